-- Indexes for listing accounts. SQLite has no trigram index: a search ('%text%') scans the
-- accounts, which stays in the tens of milliseconds up to ~100,000 accounts; beyond that,
-- run usergraph on PostgreSQL.
CREATE INDEX users_created_at_id_idx ON users (created_at, id);
CREATE INDEX profiles_display_name_order_idx ON profiles (COALESCE(display_name, ''), user_id);
CREATE INDEX users_deleted_at_idx ON users (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX users_inactive_idx ON users (id) WHERE NOT is_active;
