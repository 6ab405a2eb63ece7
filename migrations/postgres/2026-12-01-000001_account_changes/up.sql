-- Changes to what authorises an account's requests (its status, password, roles, or a role's
-- grants). Every instance caches callers and reads the recent rows once a second to drop
-- what changed; user_id NULL means every account. No foreign key: the change of an erased
-- account must still be seen.
CREATE TABLE account_changes (
    id         UUID PRIMARY KEY,
    user_id    UUID,
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX account_changes_changed_at_idx ON account_changes (changed_at);
