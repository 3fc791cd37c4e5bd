//! Recipes over HTTP: the shipped ones on a first start (and never again once deleted,
//! across a restart), making a drop from one (validated like a hand-written one, errors
//! naming the parameter or the cue), the drop remembering its recipe and version in its
//! object and its `drop.scheduled` fact (so the KPIs group by it), CRUD with versions, a
//! drop turned into a recipe, and a hub without a ledger.

use crate::common;

use anyhow::{Context, Result};
use common::{ADMIN, TestServer};
use serde_json::{Value, json};

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = server
        .http
        .request(method.parse()?, format!("{}{path}", server.base))
        .bearer_auth(ADMIN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

fn ids(list: &Value) -> Vec<&str> {
    list["recipes"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default()
}

fn error(body: &Value) -> (&str, &str, &str) {
    let e = &body["error"];
    (
        e["code"].as_str().unwrap_or(""),
        e["field"].as_str().unwrap_or(""),
        e["message"].as_str().unwrap_or(""),
    )
}

fn bowls() -> Value {
    json!({
        "id": "bowls",
        "name": "Bowls",
        "params": [
            {"name": "item"},
            {"name": "price_cents", "type": "integer", "default": 4500},
            {"name": "stock", "type": "integer", "default": 10}
        ],
        "drop": {
            "title": "{{item}} live",
            "inventory": [{"sku": "bowl", "name": "{{item}}", "price_cents": "{{price_cents}}", "stock": "{{stock}}"}],
            "script": {"duration_s": 600, "cues": [
                {"at_s": 0, "type": "intro", "title": "Only {{stock}} of them"},
                {"at_s": 60, "type": "reveal", "sku": "bowl"},
                {"at_s": 600, "type": "close"}
            ]}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_from_a_recipe_is_validated_and_remembers_it() -> Result<()> {
    let server = TestServer::start().await?;
    let (status, list) = server.get("/api/v1/recipes").await?;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&list),
        ["single-item-10min", "workshop-12min", "demo-6min"]
    );
    for (i, id) in ids(&list).into_iter().enumerate() {
        let made = server
            .ok(
                "/api/v1/drops",
                json!({"recipe": id, "id": format!("shipped-{i}")}),
            )
            .await?;
        assert_eq!(made["recipe"], json!({"id": id, "version": 1}));
        assert_eq!(made["state"], "scheduled");
    }
    let (_, demo) = server.get("/api/v1/drops/shipped-2").await?;
    assert_eq!(demo["kind"], "demo");
    assert_eq!(demo["title"], "Demo: Hand-thrown teapot");

    let made = server.ok("/api/v1/recipes", bowls()).await?;
    assert_eq!(
        (made["id"].as_str(), made["version"].as_u64()),
        (Some("bowls"), Some(1))
    );
    assert_eq!(made["maker"], "default");
    let body = json!({"recipe": "bowls", "params": {"item": "Blue bowl", "stock": 3},
                      "starts_at": "2030-05-01T18:00:00+02:00", "id": "blue"});
    let drop = server.ok("/api/v1/drops", body).await?;
    assert_eq!(drop["title"], "Blue bowl live");
    assert_eq!(drop["starts_at"], "2030-05-01T16:00:00Z");
    assert_eq!(drop["inventory"][0]["stock"], 3);
    assert_eq!(drop["inventory"][0]["price_cents"], 4500);
    assert_eq!(drop["script"]["cues"][0]["title"], "Only 3 of them");
    assert_eq!(drop["recipe"], json!({"id": "bowls", "version": 1}));
    // The viewer's copy does not say.
    let (mut viewer, _) = server.join("blue", None, None).await?;
    let snapshot = viewer.next_of("snapshot").await?;
    assert_eq!(snapshot["drop"]["title"], "Blue bowl live");
    assert!(snapshot["drop"].get("recipe").is_none(), "{snapshot}");

    // Refusals name the parameter or the cue; nothing is made.
    let cases = [
        (
            json!({"recipe": "bowls"}),
            "params.item",
            "missing parameter \"item\"",
        ),
        (
            json!({"recipe": "bowls", "params": {"item": "x", "colour": "red"}}),
            "params.colour",
            "unknown parameter \"colour\"",
        ),
        (
            json!({"recipe": "bowls", "params": {"item": 5}}),
            "params.item",
            "must be a string",
        ),
        (
            json!({"recipe": "bowls", "params": {"item": "x", "stock": 2_000_000}}),
            "drop.inventory[0].stock",
            "(from parameter \"stock\")",
        ),
        (
            json!({"recipe": "nope", "params": {}}),
            "recipe",
            "no recipe \"nope\"",
        ),
        (
            json!({"recipe": "bowls", "params": {"item": "x"}, "id": "Not An Id"}),
            "id",
            "not a drop id",
        ),
    ];
    for (body, field, says) in cases {
        let (status, answer) = server.post("/api/v1/drops", body.clone()).await?;
        let (code, got_field, message) = error(&answer);
        assert_eq!(
            (status, code, got_field),
            (422, "invalid", field),
            "{body} → {answer}"
        );
        assert!(message.contains(says), "{body} → {message}");
    }
    let (status, answer) = server
        .post(
            "/api/v1/drops",
            json!({"recipe": "bowls", "parameters": {}}),
        )
        .await?;
    assert_eq!((status, error(&answer).0), (400, "bad_request"), "{answer}");
    let (_, drops) = server.get("/api/v1/drops").await?;
    assert_eq!(drops["drops"].as_array().map(Vec::len), Some(4));

    // A cue at fault: the recipe is changed so that the reveal comes after the end.
    let mut late = bowls();
    late["drop"]["script"]["cues"][1]["at_s"] = json!("{{stock}}");
    late["id"] = json!("late");
    let (status, answer) = server.post("/api/v1/recipes", late.clone()).await?;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = server
        .post(
            "/api/v1/drops",
            json!({"recipe": "late", "params": {"item": "x", "stock": 700}}),
        )
        .await?;
    let (_, field, message) = error(&answer);
    assert_eq!((status, field), (422, "drop.script.cues[1].at_s"));
    assert!(
        message.starts_with("drop.script.cues[1].at_s: cue 1 (reveal): ")
            && message.contains("past the end"),
        "{message}"
    );

    // The fact carries the recipe; the KPIs group by it.
    common::eventually("the drop.scheduled fact of blue", || async {
        let (_, facts) = server
            .get("/api/v1/ledger/facts?drop=blue&kind=drop.scheduled")
            .await?;
        Ok(facts["facts"][0]["detail"]["recipe"] == "bowls")
    })
    .await?;
    let (_, facts) = server
        .get("/api/v1/ledger/facts?drop=blue&kind=drop.scheduled")
        .await?;
    assert_eq!(facts["facts"][0]["detail"]["recipe_version"], 1);
    let (_, plain) = server
        .get("/api/v1/ledger/facts?drop=shipped-0&kind=drop.scheduled")
        .await?;
    assert_eq!(plain["facts"][0]["detail"]["recipe"], "single-item-10min");
    let (_, summary) = server
        .get("/api/v1/analytics/summary?by=recipe&from=2000-01-01")
        .await?;
    let groups: Vec<(String, u64)> = summary["groups"]
        .as_array()
        .context("groups")?
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap_or("").to_owned(),
                g["drops"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for key in ["bowls", "single-item-10min", "workshop-12min", "demo-6min"] {
        assert!(groups.contains(&(key.to_owned(), 1)), "{key}: {groups:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipes_are_versioned_and_made_from_drops() -> Result<()> {
    let server = TestServer::start().await?;
    let (status, _) = server.post("/api/v1/recipes", bowls()).await?;
    assert_eq!(status, 201);
    let (status, answer) = server.post("/api/v1/recipes", bowls()).await?;
    assert_eq!((status, error(&answer).0), (409, "already_exists"));

    // Saving checks declarations: an undeclared placeholder, an unused parameter.
    let mut bad = bowls();
    bad["id"] = json!("bad");
    bad["drop"]["title"] = json!("{{colour}}");
    let (status, answer) = server.post("/api/v1/recipes", bad).await?;
    let (_, field, message) = error(&answer);
    assert_eq!((status, field), (422, "drop.title"));
    assert!(
        message.contains("unknown parameter \"colour\""),
        "{message}"
    );
    let mut unused = bowls();
    unused["id"] = json!("unused");
    unused["params"]
        .as_array_mut()
        .context("params")?
        .push(json!({"name": "glaze"}));
    let (status, answer) = server.post("/api/v1/recipes", unused).await?;
    assert_eq!((status, error(&answer).1), (422, "params[3]"), "{answer}");

    // PATCH: the version goes up; what was not given stays.
    let (status, changed) = send(
        &server,
        "PATCH",
        "/api/v1/recipes/bowls",
        Some(json!({"name": "Bowls, again"})),
    )
    .await?;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["version"].as_u64(), changed["name"].as_str()),
        (Some(2), Some("Bowls, again"))
    );
    assert_eq!(changed["params"].as_array().map(Vec::len), Some(3));
    let (status, answer) = send(
        &server,
        "PATCH",
        "/api/v1/recipes/bowls",
        Some(json!({"params": []})),
    )
    .await?;
    assert_eq!(
        (status, error(&answer).0),
        (422, "invalid"),
        "placeholders of no parameter: {answer}"
    );
    let (_, now) = server.get("/api/v1/recipes/bowls").await?;
    assert_eq!(now["version"], 2, "a refused change changes nothing");
    let drop = server
        .ok(
            "/api/v1/drops",
            json!({"recipe": "bowls", "params": {"item": "Mug"}}),
        )
        .await?;
    assert_eq!(drop["recipe"]["version"], 2);

    // A drop turned into a recipe makes the same drop again.
    let id = drop["id"].as_str().context("id")?;
    let (status, lifted) = server
        .post(
            &format!("/api/v1/drops/{id}/recipe"),
            json!({"id": "mugs", "description": "from a drop"}),
        )
        .await?;
    assert_eq!(status, 201, "{lifted}");
    assert_eq!(lifted["name"], "Mug live");
    let params: Vec<&str> = lifted["params"]
        .as_array()
        .context("params")?
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(params, ["title", "item", "price_cents", "stock"]);
    let again = server
        .ok(
            "/api/v1/drops",
            json!({"recipe": "mugs", "id": "mugs-again"}),
        )
        .await?;
    for key in [
        "title",
        "kind",
        "currency",
        "hold_s",
        "inventory",
        "script",
        "early_access_s",
    ] {
        assert_eq!(again[key], drop[key], "{key}");
    }
    // A body is an object, never a struct's fields in an array (found by Schemathesis).
    let (status, answer) = server
        .post(&format!("/api/v1/drops/{id}/recipe"), json!([null, null]))
        .await?;
    assert_eq!((status, error(&answer).0), (400, "bad_request"), "{answer}");
    let (status, answer) = server.post("/api/v1/drops/nope/recipe", json!({})).await?;
    assert_eq!((status, error(&answer).0), (404, "not_found"));

    // DELETE, then 404 everywhere; the drop keeps its recipe.
    let (status, _) = send(&server, "DELETE", "/api/v1/recipes/bowls", None).await?;
    assert_eq!(status, 204);
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"name": "x"}))),
        ("DELETE", None),
    ] {
        let (status, answer) = send(&server, method, "/api/v1/recipes/bowls", body).await?;
        assert_eq!(
            (status, error(&answer).0),
            (404, "no_such_recipe"),
            "{method}"
        );
    }
    let (_, kept) = server.get(&format!("/api/v1/drops/{id}")).await?;
    assert_eq!(kept["recipe"], json!({"id": "bowls", "version": 2}));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_recipes_come_once_and_recipes_survive_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = TestServer::on_dir(dir.path()).await?;
    let (status, _) = send(&server, "DELETE", "/api/v1/recipes/workshop-12min", None).await?;
    assert_eq!(status, 204);
    server.ok("/api/v1/recipes", bowls()).await?;
    let drop = server
        .ok(
            "/api/v1/drops",
            json!({"recipe": "demo-6min", "id": "teapots"}),
        )
        .await?;
    assert_eq!(drop["recipe"]["id"], "demo-6min");
    server.stop().await?;

    let server = TestServer::on_dir(dir.path()).await?;
    let (_, list) = server.get("/api/v1/recipes").await?;
    assert_eq!(ids(&list), ["single-item-10min", "demo-6min", "bowls"]);
    let (_, drop) = server.get("/api/v1/drops/teapots").await?;
    assert_eq!(
        drop["recipe"],
        json!({"id": "demo-6min", "version": 1}),
        "the store keeps it"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ledger_recipes_answer_ledger_off() -> Result<()> {
    let server = TestServer::with(common::memory_options()?).await?;
    for (method, path, body) in [
        ("GET", "/api/v1/recipes", None),
        ("POST", "/api/v1/recipes", Some(bowls())),
        ("GET", "/api/v1/recipes/bowls", None),
        (
            "POST",
            "/api/v1/drops",
            Some(json!({"recipe": "demo-6min"})),
        ),
    ] {
        let (status, answer) = send(&server, method, path, body).await?;
        assert_eq!(
            (status, error(&answer).0),
            (503, "ledger_off"),
            "{method} {path}"
        );
    }
    let id = server
        .create(common::drop_spec("plain", 5, 1, common::far_script()))
        .await?;
    let (status, answer) = server
        .post(&format!("/api/v1/drops/{id}/recipe"), json!({}))
        .await?;
    assert_eq!((status, error(&answer).0), (503, "ledger_off"));
    Ok(())
}
