// The tables as both backends see them; kept in step with migrations/{sqlite,postgres}.

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        display_name -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_sign_in_at -> Nullable<Timestamp>,
        deactivated_at -> Nullable<Timestamp>,
        external_id -> Nullable<Text>,
        provider_issuer -> Nullable<Text>,
        provider_subject -> Nullable<Text>,
        provider_confirmed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    personal_access_tokens (id) {
        id -> BigInt,
        user_id -> Nullable<BigInt>,
        name -> Text,
        digest -> Text,
        hint -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<BigInt>,
        regenerated_at -> Nullable<Timestamp>,
        application_id -> Nullable<BigInt>,
        created_by -> Nullable<BigInt>,
        revoked_reason -> Nullable<Text>,
        allowed_addresses -> Nullable<Text>,
    }
}

diesel::table! {
    /// Each token's last use, one row per token (made with it by a trigger), apart from the
    /// token's own row so the batched recorder never rewrites that.
    token_last_uses (token_id) {
        token_id -> BigInt,
        last_used_at -> Nullable<Timestamp>,
        last_used_ip -> Nullable<Text>,
        /// The token's `regenerated_at`: a use from before it was a replaced secret's.
        secret_since -> Nullable<Timestamp>,
    }
}

diesel::table! {
    token_previous_secrets (token_id) {
        token_id -> BigInt,
        digest -> Text,
        hint -> Text,
        replaced_at -> Timestamp,
        valid_until -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        last_used_ip -> Nullable<Text>,
        allowed_addresses -> Nullable<Text>,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    token_address_refusals (token_id, address, day) {
        token_id -> BigInt,
        address -> Text,
        day -> Text,
    }
}

diesel::table! {
    applications (id) {
        id -> BigInt,
        name -> Text,
        name_key -> Text,
        description -> Text,
        created_at -> Timestamp,
        created_by -> Nullable<BigInt>,
        archived_at -> Nullable<Timestamp>,
        archived_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    application_maintainers (application_id, user_id) {
        application_id -> BigInt,
        user_id -> BigInt,
        added_at -> Timestamp,
        added_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        created_at -> Timestamp,
        actor_id -> Nullable<BigInt>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<BigInt>,
        target_label -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    password_links (id) {
        id -> BigInt,
        user_id -> BigInt,
        digest -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    sessions (digest) {
        digest -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        pending_showing -> Nullable<Text>,
    }
}

diesel::table! {
    sign_in_attempts (id) {
        id -> BigInt,
        email -> Text,
        client_ip -> Text,
        created_at -> Timestamp,
        outcome -> Text,
    }
}

diesel::table! {
    token_scopes (scope, token_id) {
        scope -> Text,
        token_id -> BigInt,
    }
}

diesel::table! {
    token_usage (token_id, address, user_agent) {
        token_id -> BigInt,
        address -> Text,
        user_agent -> Text,
        first_seen_at -> Timestamp,
        last_seen_at -> Timestamp,
        use_count -> BigInt,
    }
}

diesel::table! {
    token_known_addresses (token_id, address) {
        token_id -> BigInt,
        address -> Text,
        first_seen_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    token_address_alerts (token_id) {
        token_id -> BigInt,
        address -> Text,
        user_agent -> Text,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    token_scope_uses (token_id, scope) {
        token_id -> BigInt,
        scope -> Text,
        last_exercised_at -> Timestamp,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        kind -> Text,
        recipient_id -> BigInt,
        recipient_email -> Text,
        token_id -> Nullable<BigInt>,
        token_name -> Text,
        facts -> Text,
        dedupe_key -> Text,
        due_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        abandoned_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(audit_events -> users (actor_id));
diesel::joinable!(notifications -> users (recipient_id));
diesel::joinable!(token_scopes -> personal_access_tokens (token_id));
diesel::joinable!(token_previous_secrets -> personal_access_tokens (token_id));
diesel::joinable!(token_last_uses -> personal_access_tokens (token_id));
diesel::joinable!(token_usage -> personal_access_tokens (token_id));
diesel::joinable!(token_address_alerts -> personal_access_tokens (token_id));
diesel::joinable!(token_scope_uses -> personal_access_tokens (token_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(personal_access_tokens -> users (user_id));
diesel::joinable!(personal_access_tokens -> applications (application_id));
diesel::joinable!(application_maintainers -> applications (application_id));
diesel::joinable!(application_maintainers -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    personal_access_tokens,
    audit_events,
    password_links,
    settings,
    sign_in_attempts,
    token_scopes,
    applications,
    application_maintainers,
    token_previous_secrets,
    token_last_uses,
    token_address_refusals,
    token_usage,
    token_known_addresses,
    token_address_alerts,
    token_scope_uses,
    notifications
);
