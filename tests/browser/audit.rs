//! What every page must be, checked in the browser: `lang`, one `h1`, the
//! CSRF `<meta>`, labelled inputs, the stylesheet applied with no inline
//! script or style (scripts come from `/static` only), no sideways scrolling at 360 px, and zero serious or
//! critical axe-core violations in light and dark. Each audited page is also
//! saved as PNGs under `target/screenshots/`.

use std::path::PathBuf;

use serde_json::Value;

use crate::driver::{Browser, say};

pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (360, 740);

const AXE_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/browser/node_modules/axe-core/axe.min.js"
);

pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// axe-core's source, or `None` (after saying why) when `npm ci` has not been
/// run in `tests/browser`; CI requires it.
fn axe_source() -> Option<String> {
    match std::fs::read_to_string(AXE_PATH) {
        Ok(src) => Some(src),
        Err(e) => {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_BROWSER").is_none(),
                "axe-core missing at {AXE_PATH} ({e}); run `npm ci` in tests/browser"
            );
            say(&format!(
                "axe checks SKIPPED: {AXE_PATH} missing ({e}); run `npm ci` in tests/browser"
            ));
            None
        }
    }
}

const STRUCTURE: &str = r#"
const fields = [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden' && !el.hidden);
return {
  lang: document.documentElement.lang,
  h1: document.querySelectorAll('h1').length,
  csrfMeta: (document.querySelector('meta[name="csrf-token"]') || {}).content || '',
  styled: [...document.querySelectorAll('[style]')].map(el => el.tagName),
  scripts: [...document.querySelectorAll('script')]
    .filter(s => !s.src.startsWith(location.origin + '/static/') || s.textContent.trim()).length,
  cssRules: [...document.styleSheets].reduce((n, s) => n + s.cssRules.length, 0),
  unlabelled: fields.filter(el => !(el.labels && el.labels.length)).map(el => el.name),
  undescribed: [...document.querySelectorAll('.field-error')]
    .filter(p => !document.querySelector('[aria-describedby~="' + p.id + '"]'))
    .map(p => p.id || p.textContent),
  headerLinks: [...document.querySelectorAll('header a, header button')].map(el => el.textContent.trim()),
};
"#;

const RUN_AXE: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] })
  .then(r => done(r.violations.map(v => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary),
  }))))
  .catch(e => done({ error: String(e) }));
"#;

/// Runs every check on the page the browser shows, naming it `name`.
pub async fn page(b: &Browser, name: &str) {
    b.viewport(DESKTOP.0, DESKTOP.1).await;
    let s = b.js(STRUCTURE).await;
    assert_eq!(s["lang"], "en", "{name}: <html lang>");
    assert_eq!(s["h1"], 1, "{name}: exactly one h1");
    assert!(
        !s["csrfMeta"].as_str().unwrap_or_default().is_empty(),
        "{name}: <meta name=csrf-token> with a token"
    );
    assert_eq!(s["styled"], Value::Array(vec![]), "{name}: no style=");
    assert_eq!(
        s["scripts"], 0,
        "{name}: no inline <script>, none from elsewhere"
    );
    assert!(
        s["cssRules"].as_u64().unwrap_or_default() > 20,
        "{name}: site.css applied under the CSP"
    );
    assert_eq!(
        s["unlabelled"],
        Value::Array(vec![]),
        "{name}: unlabelled inputs"
    );
    assert_eq!(
        s["undescribed"],
        Value::Array(vec![]),
        "{name}: field errors not tied to a field by aria-describedby"
    );
    assert!(
        s["headerLinks"]
            .as_array()
            .is_some_and(|l| l.iter().any(|t| t == "Portcullis")),
        "{name}: header with the app name"
    );

    if let Some(axe) = axe_source() {
        for scheme in ["light", "dark"] {
            b.color_scheme(scheme).await;
            axe_clean(b, &axe, &format!("{name} ({scheme})")).await;
        }
        b.color_scheme("light").await;
    }

    b.viewport(PHONE.0, PHONE.1).await;
    let fit = b
        .js(
            "return { inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
                      wide: [...document.querySelectorAll('body *')]
                        .filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5)
                        .map(el => el.tagName + '.' + el.className).slice(0, 8) };",
        )
        .await;
    assert_eq!(fit["inner"], PHONE.0, "{name}: the viewport is 360 px wide");
    assert!(
        fit["scroll"].as_u64() <= fit["inner"].as_u64(),
        "{name}: scrolls sideways at 360 px: {fit}"
    );

    shoot(b, name, "360", PHONE).await;
    shoot(b, name, "desktop", DESKTOP).await;
    b.color_scheme("dark").await;
    shoot(b, name, "desktop-dark", DESKTOP).await;
    b.color_scheme("light").await;
    b.viewport(DESKTOP.0, DESKTOP.1).await;
}

/// Injects axe-core (WebDriver scripts are not subject to the page's CSP)
/// and returns its violations on the current page.
async fn axe_violations(b: &Browser, axe: &str, name: &str) -> Vec<Value> {
    b.js(axe).await;
    let violations = b
        .client
        .execute_async(RUN_AXE, Vec::new())
        .await
        .expect("axe.run");
    violations
        .as_array()
        .unwrap_or_else(|| panic!("{name}: axe failed: {violations}"))
        .clone()
}

/// Fails on any serious or critical axe-core violation.
async fn axe_clean(b: &Browser, axe: &str, name: &str) {
    let list = axe_violations(b, axe, name).await;
    let (bad, minor): (Vec<&Value>, Vec<&Value>) = list
        .iter()
        .partition(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")));
    let ids = |vs: &[&Value]| {
        vs.iter()
            .map(|v| format!("{}({})", v["id"].as_str().unwrap_or("?"), v["impact"]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    say(&format!(
        "axe {name}: {} serious/critical, {} minor/moderate{}",
        bad.len(),
        minor.len(),
        if minor.is_empty() {
            String::new()
        } else {
            format!(" [{}]", ids(&minor))
        }
    ));
    assert!(
        bad.is_empty(),
        "{name}: axe-core found serious/critical violations:\n{}",
        serde_json::to_string_pretty(&bad).unwrap_or_default()
    );
}

/// A full-page PNG at the given width.
async fn shoot(b: &Browser, name: &str, label: &str, (width, height): (u32, u32)) {
    b.viewport(width, height).await;
    let full = b
        .js("return document.documentElement.scrollHeight;")
        .await
        .as_u64()
        .unwrap_or(u64::from(height));
    let full = u32::try_from(full).unwrap_or(height).clamp(height, 4000);
    b.viewport(width, full).await;
    let png = b.client.screenshot().await.expect("screenshot");
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("write screenshot");
}

/// The ids of axe's serious or critical findings on the current page, to
/// prove the harness sees real problems (`None` without axe-core).
pub async fn serious_findings(b: &Browser) -> Option<Vec<String>> {
    let axe = axe_source()?;
    let list = axe_violations(b, &axe, "self-check").await;
    Some(
        list.iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .filter_map(|v| v["id"].as_str().map(str::to_owned))
            .collect(),
    )
}
