-- Applications: services that hold tokens of their own, which outlive the people who made them.
-- A token now belongs to a person (user_id) or to an application (application_id), never both;
-- created_by keeps who made an application token. SQLite cannot drop a NOT NULL, so the token
-- table is rebuilt (https://sqlite.org/lang_altertable.html#otheralter): every row and id is
-- carried over, and token_scopes, which refers to the table by name, refers to the new one.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    -- The name as compared for uniqueness (lower case), among applications not archived.
    name_key TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    created_by BIGINT REFERENCES users (id),
    archived_at TIMESTAMP,
    archived_by BIGINT REFERENCES users (id)
);
CREATE UNIQUE INDEX applications_name_key ON applications (name_key) WHERE archived_at IS NULL;

CREATE TABLE application_maintainers (
    application_id BIGINT NOT NULL REFERENCES applications (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    added_at TIMESTAMP NOT NULL,
    added_by BIGINT REFERENCES users (id),
    PRIMARY KEY (application_id, user_id)
);
CREATE INDEX application_maintainers_user ON application_maintainers (user_id);

CREATE TABLE personal_access_tokens_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT REFERENCES users (id),
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
    regenerated_at TIMESTAMP,
    application_id BIGINT REFERENCES applications (id),
    created_by BIGINT REFERENCES users (id),
    CHECK ((user_id IS NULL) <> (application_id IS NULL))
);
INSERT INTO personal_access_tokens_rebuilt (id, user_id, name, digest, hint, scopes, created_at,
    expires_at, last_used_at, last_used_ip, revoked_at, revoked_by, regenerated_at)
SELECT id, user_id, name, digest, hint, scopes, created_at, expires_at, last_used_at,
    last_used_ip, revoked_at, revoked_by, regenerated_at
FROM personal_access_tokens;
DROP TABLE personal_access_tokens;
ALTER TABLE personal_access_tokens_rebuilt RENAME TO personal_access_tokens;
CREATE INDEX personal_access_tokens_owner ON personal_access_tokens (user_id, revoked_at, created_at);
CREATE INDEX personal_access_tokens_last_used ON personal_access_tokens (last_used_at, id);
CREATE INDEX personal_access_tokens_created ON personal_access_tokens (created_at);
CREATE INDEX personal_access_tokens_expires ON personal_access_tokens (expires_at);
CREATE INDEX personal_access_tokens_application
    ON personal_access_tokens (application_id, revoked_at, created_at);

COMMIT;
PRAGMA foreign_keys = ON;
