-- Each token's scopes one to a row, so the admin inventory finds the tokens holding a scope by
-- an index instead of matching patterns over the space-separated `scopes` text. That column
-- stays the token's own record; this table is written in the same transaction as it.
CREATE TABLE token_scopes (
    scope TEXT NOT NULL,
    token_id BIGINT NOT NULL REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    PRIMARY KEY (scope, token_id)
) WITHOUT ROWID;
WITH RECURSIVE split (token_id, scope_name, rest) AS (
    SELECT id, '', scopes || ' ' FROM personal_access_tokens
    UNION ALL
    SELECT token_id, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
    FROM split WHERE rest <> ''
)
INSERT OR IGNORE INTO token_scopes (scope, token_id)
SELECT scope_name, token_id FROM split WHERE scope_name <> '';
