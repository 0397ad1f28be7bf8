ALTER TABLE sessions DROP COLUMN pending_showing;
DROP TABLE sign_in_attempts;
