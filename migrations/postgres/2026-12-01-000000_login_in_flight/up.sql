-- Password checks under way per email: they count towards the lockout threshold while they
-- run, and as failures only once they have failed. in_flight_at tells stale counts (a
-- process that died mid-check) from live ones.
ALTER TABLE login_failures ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN in_flight_at TIMESTAMP;
