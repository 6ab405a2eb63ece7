-- Announcing live events (db/live_events.rs) from within the statements that write the
-- changes, as functions so that those statements stay plain, cacheable diesel queries.
-- Each announces only while some instance holds a current lease in live_listeners, on the
-- channel `usergraph_events`, with the payloads serde reads as `Event` (kind, then fields).

-- Whether some instance listens.
CREATE FUNCTION live_listened() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM live_listeners WHERE until > (now() AT TIME ZONE 'UTC'))
$$;

-- An audit row written (`Event::Audit`), or only its id (`Event::AuditRef`) when the row
-- is longer than a notification may be (8000 bytes).
CREATE FUNCTION live_announce_audit(
    id uuid, at timestamp, actor_id uuid, action text, target_type text, target_id text,
    ip text, user_agent text, details text
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    IF NOT live_listened() THEN
        RETURN false;
    END IF;
    payload := json_build_object('kind', 'audit', 'id', id, 'at', at, 'actor_id', actor_id,
        'action', action, 'target_type', target_type, 'target_id', target_id, 'ip', ip,
        'user_agent', user_agent, 'details', details)::text;
    IF octet_length(payload) > 7900 THEN
        payload := json_build_object('kind', 'audit_ref', 'id', id)::text;
    END IF;
    PERFORM pg_notify('usergraph_events', payload);
    RETURN true;
END
$$;

-- What authorises an account (every account when NULL) changed (`Event::AccountChanged`).
CREATE FUNCTION live_announce_account_change(user_id uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT live_listened() THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('usergraph_events',
        json_build_object('kind', 'account_changed', 'user', user_id)::text);
    RETURN true;
END
$$;

-- Payloads made by the server (`Event::Revoked`).
CREATE FUNCTION live_announce(payloads text[]) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    IF NOT live_listened() THEN
        RETURN false;
    END IF;
    FOREACH payload IN ARRAY payloads LOOP
        PERFORM pg_notify('usergraph_events', payload);
    END LOOP;
    RETURN true;
END
$$;
