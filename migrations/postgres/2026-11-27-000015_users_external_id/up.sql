-- The identifier a provisioning client (SCIM) keeps for the member, echoed back to it.
ALTER TABLE users ADD COLUMN external_id TEXT;
