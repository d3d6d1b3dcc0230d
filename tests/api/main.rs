//! End-to-end tests: each test starts the real app (the same
//! `Application::build` as `main`) on 127.0.0.1 with a fresh SQLite file in a
//! temp dir, and talks to it over HTTP.

mod admin;
mod api;
mod audit;
mod backends;
mod cli;
mod csrf;
mod guard;
mod helpers;
mod keys;
mod limits;
mod login;
mod metrics;
mod mfa;
mod pages;
mod passkeys;
mod register;
mod reset;
mod session_core;
mod session_model;
mod sessions;
mod startup;
mod tokens;
mod upgrade;
