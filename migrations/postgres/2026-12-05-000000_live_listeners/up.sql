-- The instances with live subscribers (GraphQL subscriptions), each renewing its row while
-- it listens. Changes announce themselves (pg_notify) only while some row is current:
-- NOTIFY serialises the commits of the transactions that use it, a cost not worth paying
-- when nobody listens. UNLOGGED: a crash forgets the rows, and listening instances write
-- theirs again within seconds.
CREATE UNLOGGED TABLE live_listeners (
    instance TEXT PRIMARY KEY,
    until    TIMESTAMP NOT NULL
);
