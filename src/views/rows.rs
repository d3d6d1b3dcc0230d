//! How rows of data are shown: sessions, passkeys, users, timestamps,
//! device names.

use crate::{
    auth::{Identity, accounts::SessionInfo, audit::Entry, passkeys::PasskeyInfo},
    db::models::User,
    domain::Role,
};

pub struct SessionRow {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub started: String,
    pub last_used: String,
    pub current: bool,
}

impl SessionRow {
    /// `viewer` marks the row of the session the page is shown in.
    pub fn new(session: SessionInfo, viewer: &Identity) -> Self {
        SessionRow {
            current: session.id == viewer.session_id,
            device: device_name(&session.user_agent),
            ip: if session.ip.is_empty() {
                "unknown".into()
            } else {
                session.ip
            },
            started: timestamp(session.started),
            last_used: timestamp(session.last_used),
            id: session.id.0,
        }
    }
}

pub struct PasskeyRow {
    pub id: i32,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

impl PasskeyRow {
    pub fn new(passkey: PasskeyInfo) -> Self {
        PasskeyRow {
            id: passkey.id,
            name: passkey.name,
            created: timestamp(passkey.created),
            last_used: passkey.last_used.map_or_else(|| "never".into(), timestamp),
        }
    }
}

pub struct AdminUserRow {
    pub id: i32,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created: String,
    pub last_login: String,
    pub is_me: bool,
    /// TOTP is on.
    pub totp: bool,
}

impl AdminUserRow {
    pub fn new(user: User, viewer_id: i32, totp: bool) -> Self {
        AdminUserRow {
            totp,
            is_me: user.id == viewer_id,
            id: user.id,
            username: user.username,
            role: user.role,
            disabled: user.disabled,
            created: timestamp(user.created_at),
            last_login: user.last_login_at.map_or_else(|| "never".into(), timestamp),
        }
    }
}

/// An audit event as the audit and activity pages show it.
pub struct AuditRow {
    pub when: String,
    pub event: String,
    /// What happened, in words (the activity page).
    pub what: String,
    pub actor: String,
    pub target: String,
    pub ip: String,
    pub device: String,
    pub session: String,
    pub detail: String,
    /// A login from a device the user had not logged in from before.
    pub new_device: bool,
}

impl AuditRow {
    pub fn new(e: Entry) -> Self {
        let new_device = e.event == "login_succeeded" && e.detail.ends_with("new device");
        AuditRow {
            when: timestamp(e.at),
            what: describe(&e.event, new_device),
            actor: e.actor,
            target: e.target,
            ip: if e.ip.is_empty() {
                "unknown".into()
            } else {
                e.ip
            },
            device: device_name(&e.user_agent),
            session: e
                .session_id
                .map(|s| s.chars().take(8).collect())
                .unwrap_or_default(),
            detail: e.detail,
            event: e.event,
            new_device,
        }
    }
}

/// An event's name in words.
fn describe(event: &str, new_device: bool) -> String {
    match event {
        "login_succeeded" if new_device => "A new device logged in",
        "login_succeeded" => "Logged in",
        "login_failed" => "Failed login",
        "login_locked" => "Login refused: too many failed attempts",
        "mfa_failed" => "Wrong two-factor code",
        "logout" => "Logged out",
        "session_ended" => "Session ended",
        "logout_everywhere" => "Logged out everywhere",
        "refresh_reuse_detected" => "A stolen session token was replayed; the session was ended",
        "password_changed" => "Password changed",
        "password_reset_link_created" => "Password reset link created",
        "password_reset" => "Password reset through a link",
        "totp_enabled" => "Two-factor authentication turned on",
        "totp_disabled" => "Two-factor authentication turned off",
        "recovery_codes_regenerated" => "New recovery codes",
        "recovery_code_used" => "Recovery code used",
        "passkey_added" => "Passkey added",
        "passkey_removed" => "Passkey removed",
        "role_changed" => "Role changed",
        "user_disabled" => "Account disabled",
        "user_enabled" => "Account enabled",
        "sessions_terminated" => "All sessions ended by an administrator",
        other => other,
    }
    .to_owned()
}

/// Unix seconds as shown on pages (UTC).
pub fn timestamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// A rough, human name for a user agent: enough to tell sessions apart.
pub fn device_name(user_agent: &str) -> String {
    if user_agent.is_empty() {
        return "Unknown device".into();
    }
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("reqwest", "reqwest"),
    ]
    .iter()
    .find(|(needle, _)| user_agent.contains(needle))
    .map(|(_, name)| *name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| user_agent.contains(needle))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => o.to_owned(),
        (None, None) => user_agent.chars().take(60).collect(),
    }
}
