ALTER TABLE personal_access_tokens ADD COLUMN last_used_at TIMESTAMP, ADD COLUMN last_used_ip TEXT;
UPDATE personal_access_tokens t SET last_used_at = l.last_used_at, last_used_ip = l.last_used_ip
FROM token_last_uses l WHERE l.token_id = t.id;
CREATE INDEX personal_access_tokens_last_used ON personal_access_tokens (last_used_at ASC NULLS FIRST, id);
DROP TRIGGER personal_access_tokens_last_use ON personal_access_tokens;
DROP FUNCTION token_last_uses_row();
DROP TABLE token_last_uses;
