// @generated automatically by Diesel CLI.

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Binary,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Integer,
        at -> BigInt,
        event -> Text,
        actor_id -> Nullable<Integer>,
        actor_name -> Text,
        target_id -> Nullable<Integer>,
        target_name -> Text,
        ip -> Text,
        user_agent -> Text,
        session_id -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    legacy_refresh_tokens (jti) {
        jti -> Text,
        session_id -> Text,
        generation -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    limit_counters (key) {
        key -> Text,
        window_start -> BigInt,
        hits -> Integer,
    }
}

diesel::table! {
    mfa_challenges (token_hash) {
        token_hash -> Text,
        user_id -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Integer,
        user_id -> Integer,
        credential_id -> Text,
        user_handle -> Text,
        name -> Text,
        passkey -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Integer,
        user_id -> Integer,
        code_hash -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    reset_links (user_id) {
        user_id -> Integer,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Integer,
        generation -> BigInt,
        created_at -> BigInt,
        last_used_at -> BigInt,
        rotated_at -> BigInt,
        expires_at -> BigInt,
        user_agent -> Text,
        ip -> Text,
        revoked_at -> Nullable<BigInt>,
        auth_time -> BigInt,
        amr -> Text,
    }
}

diesel::table! {
    totp_secrets (user_id) {
        user_id -> Integer,
        secret -> Text,
        enabled_at -> Nullable<BigInt>,
        last_step -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Integer,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webauthn_ceremonies (id) {
        id -> Text,
        user_id -> Nullable<Integer>,
        kind -> Text,
        state -> Text,
        name -> Text,
        expires_at -> BigInt,
    }
}

diesel::joinable!(legacy_refresh_tokens -> sessions (session_id));
diesel::joinable!(mfa_challenges -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(reset_links -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(totp_secrets -> users (user_id));
diesel::joinable!(webauthn_ceremonies -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    app_secrets,
    audit_events,
    legacy_refresh_tokens,
    limit_counters,
    mfa_challenges,
    passkeys,
    recovery_codes,
    reset_links,
    sessions,
    totp_secrets,
    users,
    webauthn_ceremonies,
);
