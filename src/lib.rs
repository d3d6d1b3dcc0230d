//! Portcullis: an auth-first Actix-web monolith. See README.md and
//! CONTRACT.md for the public surface; `routes::configure` is the route table.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod flash;
pub mod logging;
pub mod request;
pub mod routes;
pub mod startup;
pub mod state;
pub mod views;
