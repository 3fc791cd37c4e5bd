//! The OpenAPI document (`GET /api/v1/openapi.json`) and the reference page (`/api/docs`):
//! the document is OpenAPI 3.1, every reference in it resolves, every operation says who
//! may call it and what it answers; and it lists exactly the routes the router mounts, with
//! exactly their methods, checked against a real server.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde_json::Value;

use crate::common;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
const API_ROUTER: &str = include_str!("../../src/api/mod.rs");
const APP: &str = include_str!("../../src/app.rs");
const PAGES: &str = include_str!("../../src/pages.rs");

/// Every `$ref` string in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The documented operations: path → methods.
fn operations(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_string())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[test]
fn the_document_is_openapi_3_1_and_its_references_resolve() {
    let doc = dropwire_server::openapi::document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    // Valid JSON, and reads back the same.
    let text = serde_json::to_string(&doc).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), doc);

    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100, "{} references", all.len());
    for r in &all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    // Every component schema is used or is the error body, and none is empty.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    assert!(schemas.len() >= 60, "{} schemas", schemas.len());
    for (name, schema) in schemas {
        assert!(
            schema.as_object().is_some_and(|s| !s.is_empty()),
            "{name} is empty"
        );
        let target = format!("#/components/schemas/{name}");
        assert!(all.contains(&target.as_str()), "{name} is never used");
    }
    for scheme in ["admin_token", "viewer_token"] {
        assert_eq!(
            doc["components"]["securitySchemes"][scheme]["scheme"], "bearer",
            "{scheme}"
        );
    }
}

#[test]
fn every_operation_says_who_may_call_it_and_what_it_answers() {
    let doc = dropwire_server::openapi::document();
    let mut ids = BTreeSet::new();
    let mut count = 0;
    for (path, methods) in operations(&doc) {
        assert!(path.starts_with("/api/v1/"), "{path}");
        for method in methods {
            let op = &doc["paths"][&path][&method];
            let at = format!("{method} {path}");
            count += 1;
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_owned()), "{at}: operationId {id} twice");
            assert!(op["tags"][0].is_string(), "{at} has no tag");
            assert!(op["summary"].is_string(), "{at} has no summary");
            // Security is explicit: admin, viewer, or public (an empty requirement).
            let security = op["security"].as_array().expect("security");
            assert!(!security.is_empty(), "{at}: no security");
            let schemes: BTreeSet<&str> = security
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                .collect();
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{at}: no success answer"
            );
            // Each error answer is the API's error body.
            for (status, r) in responses.iter().filter(|(s, _)| !s.starts_with('2')) {
                let r = match r["$ref"].as_str() {
                    Some(name) => doc.pointer(&name[1..]).unwrap(),
                    None => r,
                };
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{at} {status}"
                );
            }
            // Admin alone (not "public, or admin for more": POST /api/v1/viewers).
            let only_admin = security
                .iter()
                .all(|r| r.as_object().unwrap().keys().eq(["admin_token"]));
            if only_admin {
                assert!(
                    responses.contains_key("401") && responses.contains_key("403"),
                    "{at}"
                );
            }
            if schemes.contains("viewer_token") {
                assert!(responses.contains_key("401"), "{at}");
            }
            if op["requestBody"]["content"]["application/json"].is_object() {
                assert!(
                    responses.contains_key("400") && responses.contains_key("413"),
                    "{at}"
                );
            }
            // The path's parameters are all described.
            for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                let described = op["parameters"].as_array().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true)
                });
                assert!(described, "{at}: path parameter {name}");
            }
        }
    }
    assert!(count >= 35, "{count} operations");
    // Who may call what, for a few that matter.
    let security = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(
        security("/api/v1/drops", "post"),
        serde_json::json!([{"admin_token": []}])
    );
    assert_eq!(
        security("/api/v1/drops/{id}/waitlist", "post"),
        serde_json::json!([{"viewer_token": []}])
    );
    assert_eq!(
        security("/api/v1/viewers", "post"),
        serde_json::json!([{}, {"admin_token": []}])
    );
    assert_eq!(
        security("/api/v1/openapi.json", "get"),
        serde_json::json!([{}])
    );
}

/// Every API route is mounted through `utoipa_axum::routes!` (from its annotated handler),
/// never with a bare `.route(…)`, which would leave it out of the document.
#[test]
fn no_api_route_is_mounted_around_the_document() {
    for (file, source) in [
        ("api/mod.rs", API_ROUTER),
        ("app.rs", APP),
        ("pages.rs", PAGES),
    ] {
        let outside = source.lines().find(|l| l.contains(".route(\"/api/v1"));
        assert_eq!(
            outside, None,
            "{file} mounts an API route outside the document"
        );
    }
}

/// Against a real server: each documented operation is routed, and on each documented path
/// every other method is 405 — so the router has no route, and no method, that the
/// document lacks (and the document none the router lacks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_routes_the_router_mounts() -> Result<()> {
    let server = common::TestServer::start().await?;
    let doc = dropwire_server::openapi::document();
    let ops = operations(&doc);
    assert_eq!(
        ops.len(),
        API_ROUTER.matches("routes!(").count(),
        "one documented path per routes!(…) in api/mod.rs"
    );
    for (path, methods) in &ops {
        let url = format!(
            "{}{}",
            server.base,
            path.replace("{msg_id}", "msg_nope")
                .replace('{', "")
                .replace('}', "-nope")
        );
        for method in METHODS {
            let m: reqwest::Method = method.to_uppercase().parse()?;
            let resp = server
                .http
                .request(m, &url)
                .bearer_auth(common::ADMIN)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await?;
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or_default();
            let at = format!("{method} {path} → {status} {body}");
            if methods.contains(method) {
                assert_ne!(status, 405, "{at}: documented but not routed");
                let fallback = body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("no such route"));
                assert!(!fallback, "{at}: documented but not routed");
            } else {
                assert_eq!(status, 405, "{at}: routed but not documented");
            }
        }
    }
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_and_the_reference_page_are_served() -> Result<()> {
    let server = common::TestServer::start().await?;
    // The document: public, JSON, the same as generated.
    let resp = server
        .http
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served: Value = resp.json().await?;
    assert_eq!(served, dropwire_server::openapi::document());

    // The page, and the script it loads, which fetches the document: from this hub only.
    let resp = server
        .http
        .get(format!("{}/api/docs", server.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()?
            .starts_with("text/html")
    );
    let csp = resp.headers()["content-security-policy"]
        .to_str()?
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = resp.text().await?;
    assert!(page.contains(r#"<script type="module" src="/assets/js/api-docs.js">"#));
    assert!(page.contains(r#"href="/assets/css/api-docs.css""#));
    assert!(
        !page.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    for (asset, needle) in [
        ("/assets/js/api-docs.js", "/api/v1/openapi.json"),
        ("/assets/css/api-docs.css", ".op"),
    ] {
        let resp = server
            .http
            .get(format!("{}{asset}", server.base))
            .send()
            .await?;
        assert_eq!(resp.status(), 200, "{asset}");
        let text = resp.text().await?;
        assert!(text.contains(needle), "{asset}");
        assert!(
            !text.contains("https://"),
            "{asset} loads nothing from elsewhere"
        );
    }
    // An unknown path is the API's JSON 404.
    let (status, body) = server.get("/api/v1/nope").await?;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    server.stop().await
}

/// What Schemathesis found, fixed: JSON Schema's integers include `2.0`, so the hub reads a
/// whole number written with a fraction as that integer (and still refuses `2.5`); a ledger
/// import line that is JSON but not an object is a bad line, not a dropped connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_valid_bodies_are_read_as_the_document_says() -> Result<()> {
    let server = common::TestServer::start().await?;
    let mut spec = common::drop_spec("whole-floats", 40, 1, common::far_script());
    spec["hold_s"] = serde_json::json!(900.0);
    spec["inventory"][0]["price_cents"] = serde_json::json!(3.4e3);
    spec["inventory"][0]["stock"] = serde_json::json!(40.0);
    let body = serde_json::to_string(&spec)?.replace(
        "\"price_cents\":2900",
        // Read exactly: a float parser that rounds loosely makes it 2067851504154365.25.
        "\"price_cents\":2067851504154365.0",
    );
    let resp = server
        .http
        .post(format!("{}/api/v1/drops", server.base))
        .bearer_auth(common::ADMIN)
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let drop: Value = resp.json().await?;
    assert_eq!(
        status, 422,
        "read as a whole number, then too high a price: {drop}"
    );
    assert_eq!(drop["error"]["field"], "inventory[1].price_cents");
    let (status, drop) = server.post("/api/v1/drops", spec).await?;
    assert_eq!(status, 201, "{drop}");
    assert_eq!(drop["hold_s"], 900);
    assert_eq!(drop["inventory"][0]["price_cents"], 3400);
    server
        .ok("/api/v1/drops/whole-floats/start", serde_json::json!({}))
        .await?;
    let (status, drop) = server
        .post(
            "/api/v1/drops/whole-floats/fire",
            serde_json::json!({"cue": 1.0}),
        )
        .await?;
    assert_eq!(status, 200, "{drop}");
    assert_eq!(
        drop["fired"].as_array().map(Vec::len),
        Some(2),
        "intro and reveal"
    );

    let mut fractional = common::drop_spec("fractions", 40, 1, common::far_script());
    fractional["hold_s"] = serde_json::json!(900.5);
    let (status, body) = server.post("/api/v1/drops", fractional).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    assert_eq!(body["error"]["field"], "hold_s");

    let resp = server
        .http
        .post(format!("{}/api/v1/ledger/import", server.base))
        .bearer_auth(common::ADMIN)
        .header("content-type", "application/x-ndjson")
        .body("[null, null]\n7\n")
        .send()
        .await?;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await?;
    assert_eq!(body["error"]["code"], "bad_lines");
    let lines: Vec<u64> = body["error"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 2]);
    server.stop().await
}
