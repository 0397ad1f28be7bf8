-- "Stale first": never used (NULL sorts first in SQLite) then the oldest use, in index order.
DROP INDEX personal_access_tokens_last_used;
CREATE INDEX personal_access_tokens_last_used ON personal_access_tokens (last_used_at, id);
