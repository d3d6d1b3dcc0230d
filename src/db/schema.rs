// @generated automatically by Diesel CLI.

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Binary,
    }
}

diesel::table! {
    refresh_families (id) {
        id -> Text,
        user_id -> Integer,
        created_at -> BigInt,
        last_used_at -> BigInt,
        user_agent -> Text,
        ip -> Text,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (jti) {
        jti -> Text,
        family_id -> Text,
        user_id -> Integer,
        issued_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
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

diesel::joinable!(refresh_families -> users (user_id));
diesel::joinable!(refresh_tokens -> refresh_families (family_id));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(app_secrets, refresh_families, refresh_tokens, users,);
