-- A replaced secret keeps the bounds it had when it was the token's secret: its own allowlist
-- and expiry, not the ones the regenerate gave the new secret. Rows from before this migration
-- take the token's (what they were checked against until now).
ALTER TABLE token_previous_secrets ADD COLUMN allowed_addresses TEXT;
ALTER TABLE token_previous_secrets ADD COLUMN expires_at TIMESTAMP;
UPDATE token_previous_secrets SET
    allowed_addresses = (SELECT t.allowed_addresses FROM personal_access_tokens t
                         WHERE t.id = token_previous_secrets.token_id),
    expires_at = (SELECT t.expires_at FROM personal_access_tokens t
                  WHERE t.id = token_previous_secrets.token_id);
