-- Refresh rotation: each used token points at the one that replaced it.
ALTER TABLE refresh_tokens ADD COLUMN replaced_by UUID;
-- The revocation cache reads sessions revoked in the last access-token lifetime.
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at);

CREATE TABLE personal_access_tokens (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT '[]',
    token_hash   BYTEA NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at   TIMESTAMP,
    revoked_at   TIMESTAMP,
    CONSTRAINT personal_access_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX personal_access_tokens_user_id_idx ON personal_access_tokens (user_id);

-- Failed-login counters per normalised email, whether or not an account exists.
CREATE TABLE login_failures (
    email_key       TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL DEFAULT 0,
    lock_count      INTEGER NOT NULL DEFAULT 0,
    locked_until    TIMESTAMP,
    last_failure_at TIMESTAMP NOT NULL
);

-- Single-use password reset tokens, stored only as SHA-256.
CREATE TABLE password_reset_tokens (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    CONSTRAINT password_reset_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX password_reset_tokens_user_id_idx ON password_reset_tokens (user_id);

-- Append-only. No foreign keys: rows outlive the accounts they mention.
CREATE TABLE audit_events (
    id          UUID PRIMARY KEY,
    at          TIMESTAMP NOT NULL,
    actor_id    UUID,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    ip          TEXT,
    user_agent  TEXT,
    details     TEXT
);
CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_actor_id_idx ON audit_events (actor_id);
CREATE INDEX audit_events_target_id_idx ON audit_events (target_id);
CREATE INDEX audit_events_action_idx ON audit_events (action);
