-- A second factor (TOTP) per account, its recovery codes, and the challenges a login with a
-- second factor answers. `users.mfa_enabled_at` says whether one is on without a join, so
-- the cached caller knows it; a session remembers when its holder last gave each factor
-- (the step-up rule reads them; NULL authenticated_at means its creation).
ALTER TABLE users ADD COLUMN mfa_enabled_at TIMESTAMP;
ALTER TABLE sessions ADD COLUMN authenticated_at TIMESTAMP;
ALTER TABLE sessions ADD COLUMN mfa_at TIMESTAMP;

-- The secret is sealed (ChaCha20-Poly1305) with a key of the configuration, never stored
-- plain. confirmed_at NULL: enrolment started, not confirmed yet. last_step: the last
-- accepted time step, so a code is accepted once.
CREATE TABLE totp_secrets (
    user_id      UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BYTEA NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    last_step    BIGINT
);

-- Single-use codes for a lost device: HMAC-SHA-256 under the configuration's key.
CREATE TABLE recovery_codes (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX recovery_codes_user_id_idx ON recovery_codes (user_id);

-- A login whose password was right, waiting for its second factor (SHA-256 of the token).
CREATE TABLE mfa_challenges (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    CONSTRAINT mfa_challenges_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX mfa_challenges_user_id_idx ON mfa_challenges (user_id);
