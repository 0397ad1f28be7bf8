-- Mail notifications waiting to be sent, and those sent (kept for the record). A row is written
-- in the transaction of what it tells about; a background sender on any instance claims it
-- (`claimed_until`, a lease), sends it, and marks it sent. `dedupe_key` makes enqueuing the same
-- notice twice (two instances finding the same reminder due) a no-op. No secret is ever stored:
-- `facts` holds what the mail says (token name, dates, an address), rendered at send time.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    recipient_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipient_email TEXT NOT NULL,
    token_id BIGINT REFERENCES personal_access_tokens (id) ON DELETE CASCADE,
    token_name TEXT NOT NULL,
    facts TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    due_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TIMESTAMP,
    abandoned_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
-- What the sender looks for: unsent, unabandoned rows by when they are due.
CREATE INDEX notifications_due ON notifications (due_at) WHERE sent_at IS NULL AND abandoned_at IS NULL;
