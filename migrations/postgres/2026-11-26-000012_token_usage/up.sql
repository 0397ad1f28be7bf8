-- How each token is used, written by the batched Last-used recorder (never a write per request).

-- The distinct (client address, user agent) pairs that used a token, with first and last use
-- and a count; the recorder keeps the 20 most recently seen pairs of each token.
CREATE TABLE token_usage (
    token_id BIGINT NOT NULL REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    use_count BIGINT NOT NULL,
    PRIMARY KEY (token_id, address, user_agent)
);

-- The addresses a token was used from (the 100 most recently seen), so a use from an address
-- it never used is noticed; a row is inserted once, by whichever instance writes it first.
CREATE TABLE token_known_addresses (
    token_id BIGINT NOT NULL REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, address)
);

-- The flag a use from a new address raises on the token, until its owner dismisses it.
CREATE TABLE token_address_alerts (
    token_id BIGINT PRIMARY KEY REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    seen_at TIMESTAMP NOT NULL
);

-- When each scope of a token was last exercised: demanded by an API route, or asked about by a
-- gateway and granted.
CREATE TABLE token_scope_uses (
    token_id BIGINT NOT NULL REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    last_exercised_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, scope)
);

-- What was known before: each token's (and each replaced secret's) last use, whose user agent
-- was not kept.
INSERT INTO token_usage (token_id, address, user_agent, first_seen_at, last_seen_at, use_count)
SELECT id, last_used_ip, '', last_used_at, last_used_at, 1
FROM personal_access_tokens
WHERE last_used_ip IS NOT NULL AND last_used_at IS NOT NULL;

INSERT INTO token_usage (token_id, address, user_agent, first_seen_at, last_seen_at, use_count)
SELECT p.token_id, p.last_used_ip, '', p.last_used_at, p.last_used_at, 1
FROM token_previous_secrets p
WHERE p.last_used_ip IS NOT NULL AND p.last_used_at IS NOT NULL
AND NOT EXISTS (
    SELECT 1 FROM token_usage u WHERE u.token_id = p.token_id AND u.address = p.last_used_ip
);

INSERT INTO token_known_addresses (token_id, address, first_seen_at, last_seen_at)
SELECT token_id, address, MIN(first_seen_at), MAX(last_seen_at)
FROM token_usage
GROUP BY token_id, address;

-- Scopes exercised are known from now on: an older token's scopes are "not exercised" only
-- for the time since.
INSERT INTO settings (key, value)
VALUES ('usage_tracking_since', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'));
