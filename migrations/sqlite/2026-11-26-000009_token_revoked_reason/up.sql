-- Why a token was revoked when it was not by a person: 'leak_report' (someone reported it
-- publicly leaked). Its owner's list says so.
ALTER TABLE personal_access_tokens ADD COLUMN revoked_reason TEXT;
