-- Indexes for listing accounts: every order, filter and the case-insensitive search.
-- pg_trgm is a trusted extension: the database owner may create it. It is kept on down.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Orders: creation time and display name, each with the id that breaks ties. The email
-- order uses the unique key on email.
CREATE INDEX users_created_at_id_idx ON users (created_at, id);
CREATE INDEX profiles_display_name_order_idx ON profiles ((COALESCE(display_name, '')), user_id);

-- Search: trigram indexes serve LIKE '%text%' on the email (stored lower-cased) and on
-- the lower-cased display name.
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX profiles_display_name_trgm_idx ON profiles USING gin (lower(display_name) gin_trgm_ops);

-- Filters: soft-deleted and inactive accounts are the rare ones.
CREATE INDEX users_deleted_at_idx ON users (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX users_inactive_idx ON users (id) WHERE NOT is_active;
