ALTER TABLE personal_access_tokens ADD COLUMN last_used_at TIMESTAMP;
ALTER TABLE personal_access_tokens ADD COLUMN last_used_ip TEXT;
UPDATE personal_access_tokens SET
    last_used_at = (SELECT l.last_used_at FROM token_last_uses l WHERE l.token_id = personal_access_tokens.id),
    last_used_ip = (SELECT l.last_used_ip FROM token_last_uses l WHERE l.token_id = personal_access_tokens.id);
CREATE INDEX personal_access_tokens_last_used ON personal_access_tokens (last_used_at, id);
DROP TRIGGER personal_access_tokens_last_use;
DROP TABLE token_last_uses;
