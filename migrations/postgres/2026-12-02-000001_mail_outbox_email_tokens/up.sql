-- Outgoing mail, written in the transaction of the change that causes it and sent by a
-- background task with retries: a slow or failing mail server never fails a mutation, and
-- a restart loses nothing. Bodies are erased once a message is sent (they hold tokens).
CREATE TABLE mail_outbox (
    id              UUID PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    sent_at         TIMESTAMP,
    failed_at       TIMESTAMP,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

-- Tokens mailed to prove an address: `verify` (the account's address), `change` (a new
-- address, applied when confirmed), `cancel` (sent to the old address: "it was not me").
-- Stored as SHA-256 only; single use.
CREATE TABLE email_tokens (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'change', 'cancel')),
    email      TEXT NOT NULL,
    token_hash BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    CONSTRAINT email_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX email_tokens_user_id_idx ON email_tokens (user_id);
