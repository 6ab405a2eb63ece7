ALTER TABLE login_failures DROP COLUMN in_flight_at;
ALTER TABLE login_failures DROP COLUMN in_flight;
