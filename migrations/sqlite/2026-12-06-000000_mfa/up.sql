-- A second factor (TOTP) per account, its recovery codes, and the challenges a login with a
-- second factor answers. `users.mfa_enabled_at` says whether one is on without a join, so
-- the cached caller knows it; a session remembers when its holder last gave each factor
-- (the step-up rule reads them; NULL authenticated_at means its creation).
ALTER TABLE users ADD COLUMN mfa_enabled_at TEXT;
ALTER TABLE sessions ADD COLUMN authenticated_at TEXT;
ALTER TABLE sessions ADD COLUMN mfa_at TEXT;

-- The secret is sealed (ChaCha20-Poly1305) with a key of the configuration, never stored
-- plain. confirmed_at NULL: enrolment started, not confirmed yet. last_step: the last
-- accepted time step, so a code is accepted once.
CREATE TABLE totp_secrets (
    user_id      TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    confirmed_at TEXT,
    last_step    BIGINT
);

-- Single-use codes for a lost device: HMAC-SHA-256 under the configuration's key.
CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    created_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX recovery_codes_user_id_idx ON recovery_codes (user_id);

-- A login whose password was right, waiting for its second factor (SHA-256 of the token).
CREATE TABLE mfa_challenges (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    CONSTRAINT mfa_challenges_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX mfa_challenges_user_id_idx ON mfa_challenges (user_id);
