-- Each token's scopes one to a row, so the admin inventory finds the tokens holding a scope by
-- an index instead of matching patterns over the space-separated `scopes` text. That column
-- stays the token's own record; this table is written in the same transaction as it.
CREATE TABLE token_scopes (
    scope TEXT NOT NULL,
    token_id BIGINT NOT NULL REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    PRIMARY KEY (scope, token_id)
);
INSERT INTO token_scopes (scope, token_id)
SELECT DISTINCT granted.scope_name, tokens.id
FROM personal_access_tokens AS tokens,
     unnest(string_to_array(tokens.scopes, ' ')) AS granted (scope_name)
WHERE granted.scope_name <> '';
