//! The frame of every page: head, navigation, who is signed in, and the stylesheet (inline:
//! one request per page, nothing to build). Every value reaches the page through maud, which
//! escapes it: inputs and outputs of workflows are untrusted.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::auth::Principal;

/// The pages of the navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/ui/workflows", "Workflows"),
    ("/ui/runs", "Manual run"),
    ("/ui/repairs", "Repairs"),
    ("/ui/resources", "Resources"),
    ("/ui/definitions", "Definitions"),
];

/// What every page knows of its request: an extractor, for the handlers of pages.
pub struct Frame {
    /// Who is signed in.
    pub principal: Principal,
    /// The CSRF token of the session (empty when the service runs open).
    pub csrf: String,
    /// The page's path, to mark it in the navigation.
    pub path: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Frame {
    type Rejection = crate::api::error::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        // The access gate puts the principal there before any page runs.
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| crate::api::error::ApiError {
                status: axum::http::StatusCode::UNAUTHORIZED,
                message: "sign in first".into(),
            })?;
        Ok(Frame {
            principal,
            csrf: crate::auth::session::cookie(&parts.headers)
                .map(|s| crate::auth::secrets::csrf_token(&s))
                .unwrap_or_default(),
            path: parts.uri.path().to_string(),
        })
    }
}

/// A whole page.
pub fn page(frame: &Frame, title: &str, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · workflow-manager" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Main" {
                        a.brand href="/ui/workflows" { "workflow-manager" }
                        @for (href, label) in NAV {
                            @if frame.path.starts_with(href) {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    div.who {
                        (frame.principal.actor()) " · " (frame.principal.role().as_str())
                        @if matches!(&frame.principal, Principal::Token(_)) {
                            form method="post" action="/logout" {
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(frame: &Frame) -> Markup {
    html! { input type="hidden" name="_csrf" value=(frame.csrf); }
}

/// A status, as a coloured badge.
pub fn badge(status: &str) -> Markup {
    html! { span class={"badge s-" (status)} { (status) } }
}

const STYLE: &str = r#"
:root { --fg:#1d2433; --muted:#5b6478; --line:#d8dde6; --bg:#f6f7f9; --accent:#1f5fbf;
  --ok:#1a7f37; --bad:#c62828; --run:#0b72b9; --wait:#9a6700; --off:#6e40c9; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline:3px solid #f0b400; outline-offset:1px; }
.skip { position:absolute; left:-999px; } .skip:focus { left:8px; top:8px; background:#fff; padding:4px 8px; z-index:2; }
header { display:flex; flex-wrap:wrap; gap:8px 24px; align-items:center; justify-content:space-between; padding:10px 20px; background:#fff; border-bottom:1px solid var(--line); }
nav { display:flex; flex-wrap:wrap; gap:4px 16px; align-items:center; }
nav a { text-decoration:none; padding:4px 2px; } nav a[aria-current=page] { font-weight:600; border-bottom:2px solid var(--accent); }
.brand { font-weight:700; color:var(--fg); margin-right:12px; }
.who { color:var(--muted); display:flex; gap:8px; align-items:center; } .who form { display:inline; }
main { padding:16px 20px; max-width:1400px; margin:0 auto; }
h1 { font-size:22px; margin:4px 0 12px; } h2 { font-size:17px; margin:20px 0 8px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 14px; margin-bottom:14px; }
.filters { display:flex; flex-wrap:wrap; gap:10px 14px; align-items:flex-end; }
.filters label { display:flex; flex-direction:column; font-size:13px; color:var(--muted); gap:2px; }
input, select, textarea { font:inherit; padding:5px 7px; border:1px solid #b9c0cc; border-radius:4px; background:#fff; color:var(--fg); }
button, .button { font:inherit; padding:6px 12px; border-radius:4px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; text-decoration:none; display:inline-block; }
button.secondary, .button.secondary { background:#fff; color:var(--accent); } button.danger { background:var(--bad); border-color:var(--bad); }
button.link { background:none; border:none; color:var(--accent); padding:0; text-decoration:underline; }
.table-wrap { overflow-x:auto; background:#fff; border:1px solid var(--line); border-radius:6px; }
table { border-collapse:collapse; width:100%; } th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { font-size:13px; color:var(--muted); font-weight:600; background:#fbfbfc; } tbody tr:hover { background:#f3f6fb; }
td.id { font-family:ui-monospace, monospace; font-size:13px; }
.counts { display:flex; flex-wrap:wrap; gap:8px; margin:0 0 12px; padding:0; list-style:none; }
.counts a { display:inline-flex; gap:6px; align-items:center; padding:4px 10px; border:1px solid var(--line); border-radius:16px; background:#fff; text-decoration:none; color:var(--fg); }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; background:var(--muted); }
.s-succeeded { background:var(--ok); } .s-failed, .s-aborted_deps_failed { background:var(--bad); } .s-running { background:var(--run); }
.s-queued, .s-created, .s-waiting_for_deps { background:var(--wait); } .s-cancelled, .s-aborted_by_user { background:var(--off); }
.muted { color:var(--muted); } .pager { display:flex; gap:12px; margin:12px 0; align-items:center; }
.notice { padding:8px 12px; border-radius:4px; background:#e8f3ea; border:1px solid #b7dcbf; margin-bottom:12px; }
.problem { padding:8px 12px; border-radius:4px; background:#fdecea; border:1px solid #f5c2bd; margin-bottom:12px; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:4px 16px; margin:0; } dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; overflow-wrap:anywhere; }
pre { background:#0f1420; color:#e6e9ef; padding:10px 12px; border-radius:6px; overflow:auto; max-height:420px; font-size:13px; }
.grid { display:grid; grid-template-columns:minmax(0,1fr) minmax(0,1fr); gap:14px; } @media (max-width: 900px) { .grid { grid-template-columns:1fr; } }
.actions { display:flex; flex-wrap:wrap; gap:14px; } .actions form { display:flex; flex-wrap:wrap; gap:6px; align-items:flex-end; }
svg.graph { max-width:100%; height:auto; } svg.graph text { font:12px system-ui, sans-serif; fill:#fff; }
svg.graph .edge { stroke:#8a94a6; stroke-width:1.5; fill:none; } svg.graph rect { stroke:#00000022; fill:#8a94a6; }
svg.graph rect.s-succeeded { fill:var(--ok); } svg.graph rect.s-failed, svg.graph rect.s-aborted_deps_failed { fill:var(--bad); }
svg.graph rect.s-running { fill:var(--run); } svg.graph rect.s-queued, svg.graph rect.s-created, svg.graph rect.s-waiting_for_deps { fill:var(--wait); }
svg.graph rect.s-aborted_by_user { fill:var(--off); }
@media (max-width: 600px) { main { padding:10px; } th, td { padding:6px; } header { padding:8px 10px; } }
"#;
