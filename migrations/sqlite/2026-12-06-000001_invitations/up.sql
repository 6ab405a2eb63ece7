-- An invitation is an email token too: `invite` proves the address an administrator invited
-- and lets its owner choose the account's first password. SQLite cannot change a CHECK
-- constraint in place: the table is rebuilt.
CREATE TABLE email_tokens_next (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'change', 'cancel', 'invite')),
    email      TEXT NOT NULL,
    token_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    CONSTRAINT email_tokens_token_hash_key UNIQUE (token_hash)
);
INSERT INTO email_tokens_next SELECT * FROM email_tokens;
DROP TABLE email_tokens;
ALTER TABLE email_tokens_next RENAME TO email_tokens;
CREATE INDEX email_tokens_user_id_idx ON email_tokens (user_id);
