-- An externalId names one member (a provider finds members by it). Any duplicate a provider
-- left before this stays with one member (an active one first, then the most recently
-- updated); the others lose it and get it back only if the provider writes it again.
UPDATE users SET external_id = NULL
WHERE id IN (
  SELECT id FROM (
    SELECT id, ROW_NUMBER() OVER (
      PARTITION BY external_id ORDER BY is_active DESC, updated_at DESC, id DESC
    ) AS rank
    FROM users WHERE external_id IS NOT NULL
  ) ranked
  WHERE rank > 1
);
CREATE UNIQUE INDEX users_external_id ON users (external_id);
