PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DELETE FROM token_scopes WHERE token_id IN
    (SELECT id FROM personal_access_tokens WHERE application_id IS NOT NULL);
CREATE TABLE personal_access_tokens_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    last_used_at TIMESTAMP,
    last_used_ip TEXT,
    revoked_at TIMESTAMP,
    revoked_by BIGINT REFERENCES users (id),
    regenerated_at TIMESTAMP
);
INSERT INTO personal_access_tokens_rebuilt
SELECT id, user_id, name, digest, hint, scopes, created_at, expires_at, last_used_at,
    last_used_ip, revoked_at, revoked_by, regenerated_at
FROM personal_access_tokens WHERE user_id IS NOT NULL;
DROP TABLE personal_access_tokens;
ALTER TABLE personal_access_tokens_rebuilt RENAME TO personal_access_tokens;
CREATE INDEX personal_access_tokens_owner ON personal_access_tokens (user_id, revoked_at, created_at);
CREATE INDEX personal_access_tokens_last_used ON personal_access_tokens (last_used_at, id);
CREATE INDEX personal_access_tokens_created ON personal_access_tokens (created_at);
CREATE INDEX personal_access_tokens_expires ON personal_access_tokens (expires_at);
DROP TABLE application_maintainers;
DROP TABLE applications;
COMMIT;
PRAGMA foreign_keys = ON;
