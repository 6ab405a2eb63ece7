DROP TABLE audit_events;
DROP TABLE password_reset_tokens;
DROP TABLE login_failures;
DROP TABLE personal_access_tokens;
DROP INDEX sessions_revoked_at_idx;
ALTER TABLE refresh_tokens DROP COLUMN replaced_by;
