-- "Stale first": never used, then the oldest use, in index order.
DROP INDEX personal_access_tokens_last_used;
CREATE INDEX personal_access_tokens_last_used ON personal_access_tokens (last_used_at ASC NULLS FIRST, id);
