-- Accounts, profiles, roles and sessions. Timestamps are UTC without a zone (set in code);
-- emails are stored lower-cased by the application, so the unique key is case-insensitive.
CREATE TABLE users (
    id             UUID PRIMARY KEY,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    is_active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    deleted_at     TIMESTAMP,
    last_login_at  TIMESTAMP,
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE profiles (
    user_id       UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    display_name  TEXT,
    year_of_birth INTEGER,
    description   TEXT,
    avatar_url    TEXT,
    updated_at    TIMESTAMP NOT NULL
);

-- permissions: a JSON array of permission names, read with the role in one statement.
CREATE TABLE roles (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    permissions TEXT NOT NULL DEFAULT '[]',
    is_builtin  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMP NOT NULL,
    CONSTRAINT roles_name_key UNIQUE (name)
);

CREATE TABLE user_roles (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);

-- One row per login (device).
CREATE TABLE sessions (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP,
    user_agent   TEXT,
    ip           TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Opaque refresh tokens, stored only as SHA-256.
CREATE TABLE refresh_tokens (
    id         UUID PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

INSERT INTO roles (id, name, description, permissions, is_builtin, created_at) VALUES
    ('00000000-0000-7000-8000-000000000001', 'admin', 'Every permission',
     '["users:read","users:write","users:delete","roles:read","roles:write","roles:assign","audit:read"]',
     TRUE, now() AT TIME ZONE 'utc'),
    ('00000000-0000-7000-8000-000000000002', 'user', 'Every account; no administrative permission',
     '[]', TRUE, now() AT TIME ZONE 'utc');
