ALTER TABLE personal_access_tokens DROP COLUMN revoked_reason;
