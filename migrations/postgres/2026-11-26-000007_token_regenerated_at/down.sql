ALTER TABLE personal_access_tokens DROP COLUMN regenerated_at;
