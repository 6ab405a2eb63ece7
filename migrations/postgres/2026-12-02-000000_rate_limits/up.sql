-- Rate-limit buckets shared by every instance: one row per limit and client, account or
-- both, holding the bucket's theoretical arrival time (GCRA) in microseconds since the epoch.
-- A row whose time has passed is a full bucket and may be deleted. UNLOGGED: no WAL and no
-- fsync per request; after a crash or on a failover the buckets start full again, which
-- only forgives a little.
CREATE UNLOGGED TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
