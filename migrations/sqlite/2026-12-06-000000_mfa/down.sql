DROP TABLE mfa_challenges;
DROP TABLE recovery_codes;
DROP TABLE totp_secrets;
ALTER TABLE sessions DROP COLUMN mfa_at;
ALTER TABLE sessions DROP COLUMN authenticated_at;
ALTER TABLE users DROP COLUMN mfa_enabled_at;
