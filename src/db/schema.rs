//! The tables, shared by both backends (see `crate::ids::sql` for the one type that differs).

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        email_verified -> Bool,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        last_login_at -> Nullable<Timestamp>,
        mfa_enabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    profiles (user_id) {
        user_id -> Uuid,
        display_name -> Nullable<Text>,
        year_of_birth -> Nullable<Integer>,
        description -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    roles (id) {
        id -> Uuid,
        name -> Text,
        description -> Nullable<Text>,
        permissions -> Text,
        is_builtin -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    user_roles (user_id, role_id) {
        user_id -> Uuid,
        role_id -> Uuid,
        created_at -> Timestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        authenticated_at -> Nullable<Timestamp>,
        mfa_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    refresh_tokens (id) {
        id -> Uuid,
        session_id -> Uuid,
        token_hash -> Binary,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        replaced_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    personal_access_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        name -> Text,
        scopes -> Text,
        token_hash -> Binary,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    password_reset_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        token_hash -> Binary,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_failures (email_key) {
        email_key -> Text,
        failures -> Integer,
        lock_count -> Integer,
        locked_until -> Nullable<Timestamp>,
        last_failure_at -> Timestamp,
        in_flight -> Integer,
        in_flight_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    audit_events (id) {
        id -> Uuid,
        at -> Timestamp,
        actor_id -> Nullable<Uuid>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    account_changes (id) {
        id -> Uuid,
        user_id -> Nullable<Uuid>,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    live_listeners (instance) {
        instance -> Text,
        until -> Timestamp,
    }
}

diesel::table! {
    live_events (seq) {
        seq -> BigInt,
        at -> Timestamp,
        payload -> Text,
    }
}

diesel::table! {
    rate_limits (key) {
        key -> Text,
        tat -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    mail_outbox (id) {
        id -> Uuid,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    email_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        purpose -> Text,
        email -> Text,
        token_hash -> Binary,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    totp_secrets (user_id) {
        user_id -> Uuid,
        secret -> Binary,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        last_step -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    recovery_codes (id) {
        id -> Uuid,
        user_id -> Uuid,
        code_hash -> Binary,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::ids::sql::Uuid;

    mfa_challenges (id) {
        id -> Uuid,
        user_id -> Uuid,
        token_hash -> Binary,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(profiles -> users (user_id));
diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(user_roles -> roles (role_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(personal_access_tokens -> users (user_id));
diesel::joinable!(password_reset_tokens -> users (user_id));
diesel::joinable!(email_tokens -> users (user_id));
diesel::joinable!(totp_secrets -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(mfa_challenges -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    profiles,
    roles,
    user_roles,
    sessions,
    refresh_tokens,
    personal_access_tokens,
    password_reset_tokens,
    login_failures,
    audit_events,
    account_changes,
    live_events,
    live_listeners,
    rate_limits,
    mail_outbox,
    email_tokens,
    totp_secrets,
    recovery_codes,
    mfa_challenges,
);
