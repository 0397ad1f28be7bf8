-- Who a member is at the company's identity provider (its issuer and `sub`: a subject is only
-- unique within its issuer), once they signed in through it, and when it last vouched for
-- them. One member per subject of an issuer.
ALTER TABLE users ADD COLUMN provider_issuer TEXT;
ALTER TABLE users ADD COLUMN provider_subject TEXT;
ALTER TABLE users ADD COLUMN provider_confirmed_at TIMESTAMP;
CREATE UNIQUE INDEX users_provider_subject ON users (provider_issuer, provider_subject);
