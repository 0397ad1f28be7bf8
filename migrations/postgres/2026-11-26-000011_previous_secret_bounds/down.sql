ALTER TABLE token_previous_secrets DROP COLUMN expires_at;
ALTER TABLE token_previous_secrets DROP COLUMN allowed_addresses;
