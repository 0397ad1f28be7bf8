-- Last used in a narrow table of its own: the batched recorder rewrites these small rows and
-- never a token's row (nor its six indexes), so its flushes do not compete with token checks.

-- One row per token, made with it (by the trigger below): ordering by Last used reads this
-- table's index, joined to the tokens, without looking for tokens that have no row.
-- `secret_since` is the token's `regenerated_at`, kept beside its last use so the recorder
-- tells a use of a replaced secret from the new one's on the row it writes (on PostgreSQL, a
-- write that waited for a regenerate rechecks that row, not the token's).
CREATE TABLE token_last_uses (
    token_id BIGINT PRIMARY KEY REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    last_used_at TIMESTAMP,
    last_used_ip TEXT,
    secret_since TIMESTAMP
);

INSERT INTO token_last_uses (token_id, last_used_at, last_used_ip, secret_since)
SELECT id, last_used_at, last_used_ip, regenerated_at FROM personal_access_tokens;

CREATE INDEX token_last_uses_order ON token_last_uses (last_used_at ASC NULLS FIRST, token_id);

CREATE FUNCTION token_last_uses_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO token_last_uses (token_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER personal_access_tokens_last_use AFTER INSERT ON personal_access_tokens
FOR EACH ROW EXECUTE FUNCTION token_last_uses_row();

DROP INDEX personal_access_tokens_last_used;
ALTER TABLE personal_access_tokens DROP COLUMN last_used_at, DROP COLUMN last_used_ip;
