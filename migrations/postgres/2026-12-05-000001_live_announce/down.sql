DROP FUNCTION live_announce(text[]);
DROP FUNCTION live_announce_account_change(uuid);
DROP FUNCTION live_announce_audit(uuid, timestamp, uuid, text, text, text, text, text, text);
DROP FUNCTION live_listened();
