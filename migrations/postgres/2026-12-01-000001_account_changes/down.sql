DROP TABLE account_changes;
