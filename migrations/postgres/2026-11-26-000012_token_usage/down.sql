DELETE FROM settings WHERE key = 'usage_tracking_since';
DROP TABLE token_scope_uses;
DROP TABLE token_address_alerts;
DROP TABLE token_known_addresses;
DROP TABLE token_usage;
