DROP TABLE token_scopes;
