-- Applications: services that hold tokens of their own, which outlive the people who made them.
-- A token now belongs to a person (user_id) or to an application (application_id), never both;
-- created_by keeps who made an application token.
CREATE TABLE applications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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

ALTER TABLE personal_access_tokens
    ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN application_id BIGINT REFERENCES applications (id),
    ADD COLUMN created_by BIGINT REFERENCES users (id),
    ADD CONSTRAINT personal_access_tokens_one_owner
        CHECK ((user_id IS NULL) <> (application_id IS NULL));
CREATE INDEX personal_access_tokens_application
    ON personal_access_tokens (application_id, revoked_at, created_at);
