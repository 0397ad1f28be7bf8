-- When a token was last given a new secret. `created_at` now stays when the token was made
-- (it used to move on every regenerate, so a regenerated token looked new). Rows from before
-- this migration keep what they have: for a token regenerated earlier, `created_at` is the time
-- of that regenerate, and `regenerated_at` stays empty.
ALTER TABLE personal_access_tokens ADD COLUMN regenerated_at TIMESTAMP;
