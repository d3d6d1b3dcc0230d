//! Portcullis: an auth-first Actix-web monolith. `docs/reference.md` is the
//! public surface; `routes::configure` is the route table.
//!
//! The layers, top to bottom (arrows point down only): `routes` (handlers)
//! → `web` (actix adapters) and `views` (pages) → `auth` (the core, no actix
//! types) → `db` (Diesel) → `domain`, `clock`, `error`.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod routes;
pub mod startup;
pub mod views;
pub mod web;
