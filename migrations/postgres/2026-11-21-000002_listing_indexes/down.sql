DROP INDEX users_inactive_idx;
DROP INDEX users_deleted_at_idx;
DROP INDEX profiles_display_name_trgm_idx;
DROP INDEX users_email_trgm_idx;
DROP INDEX profiles_display_name_order_idx;
DROP INDEX users_created_at_id_idx;
