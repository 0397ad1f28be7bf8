CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    is_active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_sign_in_at TIMESTAMP,
    deactivated_at TIMESTAMP
);

CREATE TABLE personal_access_tokens (
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
    revoked_by BIGINT REFERENCES users (id)
);
CREATE INDEX personal_access_tokens_owner ON personal_access_tokens (user_id, revoked_at, created_at);
CREATE INDEX personal_access_tokens_last_used ON personal_access_tokens (last_used_at);
CREATE INDEX personal_access_tokens_created ON personal_access_tokens (created_at);
CREATE INDEX personal_access_tokens_expires ON personal_access_tokens (expires_at);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TIMESTAMP NOT NULL,
    actor_id BIGINT REFERENCES users (id),
    action TEXT NOT NULL,
    target_type TEXT,
    target_id BIGINT,
    target_label TEXT,
    client_ip TEXT,
    details TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_created ON audit_events (created_at);
CREATE INDEX audit_events_action_created ON audit_events (action, created_at);

-- Small key/value facts about the installation (setup done, policy).
CREATE TABLE settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
