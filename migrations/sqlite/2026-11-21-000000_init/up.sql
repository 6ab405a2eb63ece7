-- Accounts, profiles, roles and sessions (SQLite). UUIDs are text, timestamps UTC text,
-- booleans 0/1; emails are stored lower-cased by the application.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    email_verified INTEGER NOT NULL DEFAULT 0,
    is_active      INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT,
    last_login_at  TEXT,
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE profiles (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    display_name  TEXT,
    year_of_birth INTEGER,
    description   TEXT,
    avatar_url    TEXT,
    updated_at    TEXT NOT NULL
);

-- permissions: a JSON array of permission names, read with the role in one statement.
CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    permissions TEXT NOT NULL DEFAULT '[]',
    is_builtin  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    CONSTRAINT roles_name_key UNIQUE (name)
);

CREATE TABLE user_roles (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);

-- One row per login (device).
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    expires_at   TEXT NOT NULL,
    revoked_at   TEXT,
    user_agent   TEXT,
    ip           TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Opaque refresh tokens, stored only as SHA-256.
CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

INSERT INTO roles (id, name, description, permissions, is_builtin, created_at) VALUES
    ('00000000-0000-7000-8000-000000000001', 'admin', 'Every permission',
     '["users:read","users:write","users:delete","roles:read","roles:write","roles:assign","audit:read"]',
     1, strftime('%Y-%m-%d %H:%M:%f', 'now')),
    ('00000000-0000-7000-8000-000000000002', 'user', 'Every account; no administrative permission',
     '[]', 1, strftime('%Y-%m-%d %H:%M:%f', 'now'));
