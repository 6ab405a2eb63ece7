-- Rate-limit buckets, one row per limit and client, account or both, holding the bucket's
-- theoretical arrival time (GCRA) in microseconds since the epoch. A row whose time has
-- passed is a full bucket and may be deleted. The embedded default keeps its buckets in
-- memory; this table serves USERGRAPH_RATE_LIMIT_STORE=database.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
