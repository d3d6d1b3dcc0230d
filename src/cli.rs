//! The command line: `serve` (the default), `create-admin NAME`, `promote NAME`.
//! The admin commands open the same database file directly; WAL mode and the
//! busy timeout let them run while a server has it open.

use std::io::{BufRead, IsTerminal};

use clap::{Parser, Subcommand};

use crate::{
    auth::password,
    config::Config,
    db::{self, users},
    domain::{Password, Role, Username},
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

pub fn create_admin(config: &Config, name: &str) -> Result<String, String> {
    let username = Username::parse(name).map_err(|e| format!("invalid username: {e}"))?;
    let raw = read_password()?;
    let password =
        Password::parse(&raw, username.as_str()).map_err(|e| format!("invalid password: {e}"))?;
    let pool = db::open(&config.database_url).map_err(|e| e.to_string())?;
    let mut conn = pool
        .get()
        .map_err(|e| format!("cannot open the database: {e}"))?;
    if users::find_by_username(&mut conn, username.as_str())
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err(format!(
            "user {username} already exists (use `portcullis promote {username}`)"
        ));
    }
    let hash = password::hash(&password, config.bcrypt_cost)
        .map_err(|e| format!("hashing failed: {e}"))?;
    let user = users::create(&mut conn, username.as_str(), &hash, Role::Admin, db::now()).map_err(
        |e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => {
                format!("user {username} already exists")
            }
            other => format!("cannot create the user: {other}"),
        },
    )?;
    Ok(format!("created admin {} (id {})", user.username, user.id))
}

pub fn promote(config: &Config, name: &str) -> Result<String, String> {
    let pool = db::open(&config.database_url).map_err(|e| e.to_string())?;
    let mut conn = pool
        .get()
        .map_err(|e| format!("cannot open the database: {e}"))?;
    let user = users::find_by_username(&mut conn, name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named {name}"))?;
    users::set_role(&mut conn, user.id, Role::Admin).map_err(|e| e.to_string())?;
    Ok(format!("{} is now an admin", user.username))
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
