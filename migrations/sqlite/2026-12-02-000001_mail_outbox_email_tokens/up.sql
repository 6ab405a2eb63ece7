-- Outgoing mail, written in the transaction of the change that causes it and sent by a
-- background task with retries: a slow or failing mail server never fails a mutation, and
-- a restart loses nothing. Bodies are erased once a message is sent (they hold tokens).
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT,
    failed_at       TEXT,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

-- Tokens mailed to prove an address: `verify` (the account's address), `change` (a new
-- address, applied when confirmed), `cancel` (sent to the old address: "it was not me").
-- Stored as SHA-256 only; single use.
CREATE TABLE email_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'change', 'cancel')),
    email      TEXT NOT NULL,
    token_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    CONSTRAINT email_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX email_tokens_user_id_idx ON email_tokens (user_id);
