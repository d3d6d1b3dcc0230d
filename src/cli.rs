//! The command line: `serve` (the default), `create-admin NAME`, `promote
//! NAME`, `reset-link NAME`.
//! The admin commands go through the same `Accounts` as the server, on the
//! same database file; WAL mode and the busy timeout let them run while a
//! server has it open.

use std::io::{BufRead, IsTerminal};

use clap::{Parser, Subcommand};

use std::sync::Arc;

use crate::{
    auth::{Accounts, accounts::RegisterError, tokens::TokenKeys},
    clock::SystemClock,
    config::Config,
    db::Db,
    domain::{Password, Role, Username},
    startup,
};

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An auth-first web application: JWT sessions in HttpOnly cookies, server-rendered pages, a JSON API."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web application (the default when no command is given).
    Serve,
    /// Create an administrator. The password is read from the first line of
    /// stdin when it is not a terminal, otherwise prompted for twice.
    CreateAdmin {
        /// The new administrator's username.
        name: String,
    },
    /// Give an existing user the admin role.
    Promote {
        /// The user's username (any case).
        name: String,
    },
    /// Print audit events as JSON lines, oldest first.
    Audit {
        /// Only events at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only events whose actor or target is this user.
        #[arg(long)]
        user: Option<String>,
    },
    /// Print a one-time password-reset link for a user (24 hours; a new one
    /// retires the previous one).
    ResetLink {
        /// The user's username (any case).
        name: String,
    },
    /// For bench/run.sh: time bcrypt hashes at COST in this binary and print
    /// the median seconds per hash.
    #[command(hide = true)]
    BcryptTime {
        /// The bcrypt cost to time.
        #[arg(long, default_value_t = 12)]
        cost: u32,
        /// How many hashes to time (the median is printed).
        #[arg(long, default_value_t = 5)]
        rounds: u32,
    },
}

/// Reads the password: a prompt without echo on a terminal, else stdin's first line.
fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let again = rpassword::prompt_password("Password (again): ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if first != again {
            return Err("the two passwords do not match".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    }
}

/// The accounts service over the configured database, as the server builds it.
fn accounts(config: &Config) -> Result<Accounts, String> {
    let db = Db::open(&config.database_url).map_err(|e| e.to_string())?;
    let secret = startup::resolve_secret(config, &db).map_err(|e| e.to_string())?;
    let previous: Vec<&[u8]> = config.jwt_previous_keys.iter().map(|k| k.bytes()).collect();
    let keys = TokenKeys::with_previous(secret.bytes(), &previous, Arc::new(SystemClock))
        .map_err(|e| format!("invalid setting JWT_SECRET_KEY: {e}"))?;
    Accounts::new(db, keys, Arc::new(SystemClock), &startup::settings(config))
        .map_err(|e| e.to_string())
}

/// Runs one accounts call to completion on a small runtime of its own.
fn block_on<T>(work: impl std::future::Future<Output = T>) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    Ok(runtime.block_on(work))
}

pub fn create_admin(config: &Config, name: &str) -> Result<String, String> {
    let username = Username::parse(name).map_err(|e| format!("invalid username: {e}"))?;
    let raw = read_password()?;
    let password =
        Password::parse(&raw, username.as_str()).map_err(|e| format!("invalid password: {e}"))?;
    let accounts = accounts(config)?;
    match block_on(accounts.register(None, username.clone(), password, Role::Admin))? {
        Ok(user) => Ok(format!("created admin {} (id {})", user.username, user.id)),
        Err(RegisterError::UsernameTaken) => Err(format!(
            "user {username} already exists (use `portcullis promote {username}`)"
        )),
        Err(RegisterError::TooMany(_)) => Err("too many registrations".into()),
        Err(RegisterError::Failed(e)) => Err(format!("cannot create the user: {e}")),
    }
}

pub fn promote(config: &Config, name: &str) -> Result<String, String> {
    let accounts = accounts(config)?;
    match block_on(accounts.promote(name))? {
        Ok(user) => Ok(format!("{} is now an admin", user.username)),
        Err(e) => Err(e.to_string()),
    }
}

/// Prints the link alone on stdout (for scripts); what it is goes to the
/// caller's message.
pub fn reset_link(config: &Config, name: &str) -> Result<String, String> {
    let accounts = accounts(config)?;
    match block_on(accounts.reset_link_for_name(name))? {
        Ok(Some((_, token))) => Ok(accounts.public_url(&format!("/reset/{}", token.0))),
        Ok(None) => Err(format!("no user named {name}")),
        Err(e) => Err(format!("cannot create the link: {e}")),
    }
}

/// Every matching event, one JSON object per line, oldest first.
pub fn audit(config: &Config, since: Option<&str>, user: Option<&str>) -> Result<String, String> {
    let since = match since {
        None => None,
        Some(raw) => Some(
            chrono::DateTime::parse_from_rfc3339(raw)
                .map_err(|e| format!("invalid --since {raw:?}: {e} (expected RFC 3339)"))?
                .timestamp(),
        ),
    };
    let accounts = accounts(config)?;
    let query = crate::auth::audit::Query {
        user: user.map(str::to_owned),
        since,
        ..Default::default()
    };
    let entries = block_on(accounts.audit_export(query))?
        .map_err(|e| format!("cannot read the audit log: {e}"))?;
    let lines: Vec<String> = entries
        .into_iter()
        .map(|e| {
            let time = chrono::DateTime::from_timestamp(e.at, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let mut value = serde_json::to_value(&e).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("time".into(), serde_json::Value::String(time));
            }
            value.to_string()
        })
        .collect();
    Ok(lines.join("\n"))
}

/// Median wall time of `rounds` bcrypt hashes at `cost`, in seconds, one at a
/// time on this thread: the unit the bench's "bcrypt limit" is built from.
pub fn bcrypt_time(cost: u32, rounds: u32) -> Result<String, String> {
    if !(4..=31).contains(&cost) {
        return Err(format!("cost must be 4..=31, got {cost}"));
    }
    let mut times: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let started = std::time::Instant::now();
            bcrypt::hash("bench-password-1", cost).map(|_| started.elapsed().as_secs_f64())
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("hashing failed: {e}"))?;
    times.sort_by(f64::total_cmp);
    Ok(format!("{:.6}", times[times.len() / 2]))
}
