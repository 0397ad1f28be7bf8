-- Rotation with an overlap: the secret a regenerate replaced keeps working until
-- `valid_until`, and its uses are recorded apart from the new secret's. At most one per token
-- (a second regenerate replaces it).
CREATE TABLE token_previous_secrets (
    token_id BIGINT PRIMARY KEY NOT NULL REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    digest TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    replaced_at TIMESTAMP NOT NULL,
    valid_until TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    last_used_ip TEXT
);

-- The addresses a token may be used from: canonical CIDR ranges, comma-separated; NULL for
-- anywhere (every token made before this migration).
ALTER TABLE personal_access_tokens ADD COLUMN allowed_addresses TEXT;

-- A use refused for its address is audited once per token, address and day (UTC); this row
-- says it was, for every instance.
CREATE TABLE token_address_refusals (
    token_id BIGINT NOT NULL REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    day TEXT NOT NULL,
    PRIMARY KEY (token_id, address, day)
);
