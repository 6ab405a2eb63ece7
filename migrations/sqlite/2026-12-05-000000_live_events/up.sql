-- Events for live subscribers (GraphQL subscriptions), written in the transaction of the
-- change they announce, so a change that rolls back announces nothing. Every instance on
-- this file reads the rows after the last one it saw; rows older than a minute are deleted.
-- SQLite only: PostgreSQL announces with NOTIFY, which is delivered at commit.
CREATE TABLE live_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX live_events_at_idx ON live_events (at);
