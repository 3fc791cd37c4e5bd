//! The references cannot drift: every route the router serves and every error code the
//! server can answer must be in `docs/api.md`, every documented route must exist, and every
//! metric `/metrics` exports is in `docs/operations.md`. (The API's routes are those of its
//! OpenAPI document, which `openapi.rs` checks against the router.)

use crate::common;

use anyhow::Result;

const DOCS: &str = include_str!("../../../../docs/api.md");
const APP: &str = include_str!("../../src/app.rs");
const ERRORS: &str = include_str!("../../src/error.rs");
const WS: [&str; 3] = [
    include_str!("../../src/ws/mod.rs"),
    include_str!("../../src/ws/close.rs"),
    include_str!("../../src/ws/requests.rs"),
];
const OPERATIONS: &str = include_str!("../../../../docs/operations.md");
const METRICS: &str = include_str!("../../src/metrics.rs");

#[test]
fn every_metric_is_documented() {
    // Each metric is defined as `…::new("name", "help")` or `HistogramOpts::new("name", …)`.
    let names: Vec<&str> = METRICS
        .lines()
        .filter(|l| l.contains("::new(\""))
        .filter_map(|l| l.split("::new(\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(names.len() >= 14, "{names:?}");
    for name in names {
        assert!(
            OPERATIONS.contains(&format!("`dropwire_{name}")),
            "docs/operations.md does not document the metric dropwire_{name}"
        );
    }
}

/// The quoted strings of lines containing `marker`.
fn quoted_after<'a>(source: &'a str, marker: &str) -> Vec<&'a str> {
    source
        .lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| l.split('"').nth(1))
        .collect()
}

#[test]
fn every_route_and_error_code_is_documented() {
    let doc = dropwire_server::openapi::document();
    let api = doc["paths"].as_object().expect("paths");
    let mut routes: Vec<&str> = api.keys().map(String::as_str).collect();
    routes.extend(quoted_after(APP, ".route(\""));
    assert!(routes.len() >= 34, "{routes:?}");
    for route in routes {
        assert!(
            DOCS.contains(&format!("`{route}`")),
            "docs/api.md does not document {route}"
        );
    }
    let codes: Vec<&str> = ERRORS
        .lines()
        .filter(|l| l.contains("(StatusCode::"))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(codes.len() >= 15, "{codes:?}");
    for code in codes {
        assert!(
            DOCS.contains(&format!("`{code}`")),
            "docs/api.md does not document error code {code}"
        );
    }
    for line in WS
        .iter()
        .flat_map(|f| f.lines())
        .filter(|l| l.contains("CloseReason::") && l.contains("=> ("))
    {
        let code = line
            .split('(')
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or("");
        assert!(
            DOCS.contains(&format!("| {code} |")),
            "docs/api.md does not document close code {code}"
        );
    }
    for line in WS
        .iter()
        .flat_map(|f| f.lines())
        .chain(include_str!("../../src/hub/claims.rs").lines())
        .filter(|l| l.contains("ServerMsg::error(\""))
    {
        let code = line
            .split("ServerMsg::error(\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        assert!(
            DOCS.contains(&format!("`{code}`")),
            "docs/api.md does not document frame error {code}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_exists() -> Result<()> {
    let server = common::TestServer::start().await?;
    let rows = DOCS
        .lines()
        .filter(|l| l.starts_with("| GET |") || l.starts_with("| POST |"));
    let mut checked = 0;
    for row in rows {
        let cols: Vec<&str> = row.split('|').map(str::trim).collect();
        let (method, path) = (cols[1], cols[2].trim_matches('`'));
        let path = path
            .replace("{id}", "nope")
            .replace("{viewer_id}", "nope")
            .replace("{code}", "0000-0000-0000-0000");
        let url = format!("{}{path}", server.base);
        let resp = match method {
            "GET" => {
                server
                    .http
                    .get(&url)
                    .bearer_auth(common::ADMIN)
                    .send()
                    .await?
            }
            _ => {
                server
                    .http
                    .post(&url)
                    .bearer_auth(common::ADMIN)
                    .json(&serde_json::json!({}))
                    .send()
                    .await?
            }
        };
        assert_ne!(resp.status(), 405, "{method} {path}");
        if resp.status() == 404 {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("nope") || m.contains("0000")),
                "{method} {path} is not routed"
            );
        }
        checked += 1;
    }
    assert!(checked >= 12);
    server.stop().await
}
