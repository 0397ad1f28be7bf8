DROP INDEX users_provider_subject;
ALTER TABLE users DROP COLUMN provider_confirmed_at;
ALTER TABLE users DROP COLUMN provider_subject;
ALTER TABLE users DROP COLUMN provider_issuer;
