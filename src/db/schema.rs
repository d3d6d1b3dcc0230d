// @generated automatically by Diesel CLI.

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Binary,
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

diesel::joinable!(legacy_refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    app_secrets,
    legacy_refresh_tokens,
    limit_counters,
    sessions,
    users,
);
