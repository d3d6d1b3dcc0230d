//! Browser tests: the real app in headless Chromium over WebDriver
//! (fantoccini + Debian's `chromium-driver`). Each test starts the app (the
//! same `spawn_app` as the HTTP suite) and its own chromedriver, types and
//! clicks like a person, and checks accessibility with axe-core (installed by
//! `npm ci` in `tests/browser`). Without Chromium they print why and skip, so
//! `cargo test` passes on a bare machine; CI sets `PORTCULLIS_REQUIRE_BROWSER`
//! so they cannot silently skip there. Screenshots go to `target/screenshots/`.

mod admin_tools;
mod audit;
mod driver;
mod flows;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
mod pages;
mod passkeys;
mod second_factor;
