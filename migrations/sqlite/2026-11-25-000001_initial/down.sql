DROP TABLE settings;
DROP TABLE audit_events;
DROP TABLE personal_access_tokens;
DROP TABLE users;
