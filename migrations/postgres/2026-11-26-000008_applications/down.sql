DELETE FROM personal_access_tokens WHERE application_id IS NOT NULL;
ALTER TABLE personal_access_tokens
    DROP CONSTRAINT personal_access_tokens_one_owner,
    DROP COLUMN created_by,
    DROP COLUMN application_id,
    ALTER COLUMN user_id SET NOT NULL;
DROP TABLE application_maintainers;
DROP TABLE applications;
