-- Every password check, reserved before argon2 runs: the sign-in limit counts these, so
-- requests that arrive together cannot all be checked before the first failure is written.
-- 'pending' counts as a failure until its check is done. Kept 90 days: a pair of account and
-- address that signed in before is not held back by a stranger's failures.
CREATE TABLE sign_in_attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'failed', 'succeeded'))
);
CREATE INDEX sign_in_attempts_email ON sign_in_attempts (email, created_at);
CREATE INDEX sign_in_attempts_client_ip ON sign_in_attempts (client_ip, created_at);
CREATE INDEX sign_in_attempts_created ON sign_in_attempts (created_at);

-- A one-time showing (a new token, a set-password link) waiting in this session's cookie is
-- shown only while this matches it; showing it clears it, so a replayed cookie shows nothing.
ALTER TABLE sessions ADD COLUMN pending_showing TEXT;
