DROP TABLE token_address_refusals;
ALTER TABLE personal_access_tokens DROP COLUMN allowed_addresses;
DROP TABLE token_previous_secrets;
