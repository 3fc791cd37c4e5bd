//! Co-ops over HTTP: CRUD with the operator's token (validation errors naming the field,
//! bounded members), the shared calendar (public JSON, each entry with the drops it
//! overlaps; its iCalendar feed is parsed in `calendar.rs`), the overlaps route, and the
//! co-op KPIs.
//!
//! Members must be makers of the hub (`default` or made with `POST /api/v1/makers`). The
//! calendar test has drops of two makers (`default` and `north`, created with north's own
//! token); a member maker reads its co-op, another maker gets 404. The KPI test puts facts
//! of two makers straight into the hub's ledger with the funnel crate's API and checks the
//! route's exact sums; the summing itself is also proved on SQLite and PostgreSQL by the
//! ledger's conformance suite (`coop_kpis_sum_the_members_and_recompute_the_ratios`).

use crate::common;
use crate::tenancy::make_maker;

use anyhow::Result;
use common::{ADMIN, TestServer, drop_spec, far_script};
use dropwire_core::{Fact, FactKind, StartsAt};
use serde_json::{Value, json};

const HOUR: u64 = 3_600_000;

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> Result<(u16, Value)> {
    let mut req = server
        .http
        .request(method.parse()?, format!("{}{path}", server.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn admin(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    send(server, method, path, body, Some(ADMIN)).await
}

fn error(body: &Value) -> (&str, &str) {
    let e = &body["error"];
    (
        e["code"].as_str().unwrap_or(""),
        e["field"].as_str().unwrap_or(""),
    )
}

/// Makes each maker; their tokens, in order.
async fn makers(server: &TestServer, ids: &[&str]) -> Result<Vec<String>> {
    let mut tokens = Vec::new();
    for id in ids {
        tokens.push(make_maker(server, id, &format!("Maker {id}")).await?.0);
    }
    Ok(tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_ops_are_made_changed_and_deleted_by_the_operator() -> Result<()> {
    let server = TestServer::start().await?;
    let now = server.state.clock.now_ms();
    // A member must be a maker of the hub.
    let (status, bad) = admin(
        &server,
        "POST",
        "/api/v1/coops",
        Some(json!({"name": "Nobody", "makers": ["default", "north"]})),
    )
    .await?;
    assert_eq!((status, error(&bad)), (422, ("invalid", "makers[1]")));
    makers(&server, &["north", "south", "one-more"]).await?;
    let (status, made) = admin(
        &server,
        "POST",
        "/api/v1/coops",
        Some(json!({"id": "river", "name": "River studios", "makers": ["default", "north", "default"]})),
    )
    .await?;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["id"], "river");
    assert_eq!(made["name"], "River studios");
    assert_eq!(made["makers"], json!(["default", "north"]), "a repeat once");
    assert!(made["created_ms"].as_u64().is_some_and(|t| t >= now));

    // Without the operator's token: 401, and 403 with another.
    for token in [None, Some("not-the-token")] {
        let (status, _) = send(&server, "GET", "/api/v1/coops", None, token).await?;
        assert_eq!(status, if token.is_none() { 401 } else { 403 });
    }
    let (status, taken) = admin(
        &server,
        "POST",
        "/api/v1/coops",
        Some(json!({"id": "river", "name": "Again"})),
    )
    .await?;
    assert_eq!((status, error(&taken).0), (409, "already_exists"));

    // Each refusal names its field.
    let too_many: Vec<String> = (0..51).map(|i| format!("m{i}")).collect();
    for (body, status, code, field) in [
        (json!({"name": ""}), 422, "invalid", "name"),
        (json!({"name": "x".repeat(201)}), 422, "invalid", "name"),
        (json!({"id": "Big One", "name": "a"}), 422, "invalid", "id"),
        (
            json!({"name": "a", "makers": ["ok", "Not OK"]}),
            422,
            "invalid",
            "makers[1]",
        ),
        (
            json!({"name": "a", "makers": too_many}),
            422,
            "invalid",
            "makers",
        ),
        (
            json!({"name": "a", "makers": "default"}),
            400,
            "bad_request",
            "makers",
        ),
        (json!({"name": 5}), 400, "bad_request", "name"),
    ] {
        let (got, answer) = admin(&server, "POST", "/api/v1/coops", Some(body.clone())).await?;
        assert_eq!((got, error(&answer)), (status, (code, field)), "{body}");
    }

    // Made from the name when no id is given.
    let (status, other) = admin(
        &server,
        "POST",
        "/api/v1/coops",
        Some(json!({"name": "Hill makers"})),
    )
    .await?;
    assert_eq!(status, 201);
    let other_id = other["id"].as_str().unwrap_or("").to_owned();
    assert!(other_id.starts_with("hill-makers-"), "{other_id}");
    assert_eq!(other["makers"], json!([]));

    let (status, list) = admin(&server, "GET", "/api/v1/coops", None).await?;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["coops"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["river", other_id.as_str()], "oldest first");
    assert_eq!(
        admin(&server, "GET", "/api/v1/coops/river", None).await?,
        (200, made.clone())
    );

    let (status, renamed) = admin(
        &server,
        "PATCH",
        "/api/v1/coops/river",
        Some(json!({"name": "River & hill studios"})),
    )
    .await?;
    assert_eq!(
        (status, renamed["name"].as_str()),
        (200, Some("River & hill studios"))
    );
    let (status, bad) = admin(
        &server,
        "PATCH",
        "/api/v1/coops/river",
        Some(json!({"name": " "})),
    )
    .await?;
    assert_eq!((status, error(&bad)), (422, ("invalid", "name")));
    let (status, bad) = admin(
        &server,
        "PATCH",
        "/api/v1/coops/river",
        Some(json!({"makers": []})),
    )
    .await?;
    assert_eq!((status, error(&bad).0), (400, "bad_request"));

    // Members: added once, removed; a bad id names `maker`.
    let (status, added) = admin(&server, "PUT", "/api/v1/coops/river/makers/south", None).await?;
    assert_eq!(
        (status, &added["makers"]),
        (200, &json!(["default", "north", "south"]))
    );
    let (status, again) = admin(&server, "PUT", "/api/v1/coops/river/makers/south", None).await?;
    assert_eq!(
        (status, &again["makers"]),
        (200, &json!(["default", "north", "south"]))
    );
    let (status, bad) = admin(&server, "PUT", "/api/v1/coops/river/makers/No%20Way", None).await?;
    assert_eq!((status, error(&bad)), (422, ("invalid", "maker")));
    let (status, bad) = admin(&server, "PUT", "/api/v1/coops/river/makers/nobody", None).await?;
    assert_eq!((status, error(&bad).0), (404, "not_found"));
    let (status, _) = admin(&server, "DELETE", "/api/v1/coops/river/makers/north", None).await?;
    assert_eq!(status, 204);
    let (status, gone) = admin(&server, "DELETE", "/api/v1/coops/river/makers/north", None).await?;
    assert_eq!((status, error(&gone).0), (404, "not_found"));
    let (_, now_) = admin(&server, "GET", "/api/v1/coops/river", None).await?;
    assert_eq!(now_["makers"], json!(["default", "south"]));

    // At most 50 makers.
    let fifty: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    makers(
        &server,
        &fifty.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await?;
    let (status, _) = admin(
        &server,
        "POST",
        "/api/v1/coops",
        Some(json!({"id": "big", "name": "Big", "makers": fifty})),
    )
    .await?;
    assert_eq!(status, 201);
    let (status, full) = admin(&server, "PUT", "/api/v1/coops/big/makers/one-more", None).await?;
    assert_eq!((status, error(&full)), (422, ("invalid", "maker")));

    let (status, _) = admin(&server, "DELETE", "/api/v1/coops/river", None).await?;
    assert_eq!(status, 204);
    for (method, path) in [
        ("GET", "/api/v1/coops/river"),
        ("DELETE", "/api/v1/coops/river"),
        ("PUT", "/api/v1/coops/river/makers/default"),
        ("DELETE", "/api/v1/coops/river/makers/default"),
        ("GET", "/api/v1/coops/river/overlaps"),
        ("GET", "/api/v1/coops/river/kpis"),
    ] {
        let (status, answer) = admin(&server, method, path, None).await?;
        assert_eq!(
            (status, error(&answer).0),
            (404, "no_such_coop"),
            "{method} {path}"
        );
    }
    let (status, answer) = send(&server, "GET", "/api/v1/coops/river/calendar", None, None).await?;
    assert_eq!((status, error(&answer).0), (404, "no_such_coop"));
    let (status, _) = admin(
        &server,
        "PATCH",
        "/api/v1/coops/river",
        Some(json!({"name": "x"})),
    )
    .await?;
    assert_eq!(status, 404);
    server.stop().await
}

fn scheduled(id: &str, starts_ms: u64) -> Value {
    let mut spec = drop_spec(id, 5, 1, far_script());
    spec["title"] = json!(format!("Drop {id}"));
    spec["starts_at"] = json!(StartsAt(starts_ms).to_rfc3339());
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_co_op_calendar_lists_its_makers_drops_and_warns_of_overlaps() -> Result<()> {
    let server = TestServer::start().await?;
    let t = server.state.clock.now_ms() / 1000 * 1000 + 24 * HOUR;
    // Each is an hour long: the first two collide for 30 minutes, the third is alone, the
    // fourth starts the moment the third ends (touching, not colliding).
    server.create(scheduled("bowls", t)).await?;
    server.create(scheduled("jugs", t + HOUR / 2)).await?;
    server.create(scheduled("vases", t + 5 * HOUR)).await?;
    server.create(scheduled("plates", t + 6 * HOUR)).await?;
    let [north, west] = <[String; 2]>::try_from(makers(&server, &["north", "west"]).await?)
        .map_err(|_| anyhow::anyhow!("two makers"))?;
    // North's own drop, alone on its day, made with north's token.
    let (status, made) = send(
        &server,
        "POST",
        "/api/v1/drops",
        Some(scheduled("north-cups", t + 30 * HOUR)),
        Some(&north),
    )
    .await?;
    assert_eq!((status, &made["maker"]), (201, &json!("north")), "{made}");
    server.state.calendar.forget();
    admin(
        &server,
        "POST",
        "/api/v1/coops",
        Some(json!({"id": "river", "name": "River studios", "makers": ["north", "default"]})),
    )
    .await?;
    admin(
        &server,
        "POST",
        "/api/v1/coops",
        Some(json!({"id": "hill", "name": "Hill", "makers": ["north"]})),
    )
    .await?;

    // Public: no token. The same entries as the launch calendar, plus `overlaps`.
    let (status, cal) = send(&server, "GET", "/api/v1/coops/river/calendar", None, None).await?;
    assert_eq!(status, 200, "{cal}");
    assert_eq!(
        (cal["coop"].as_str(), cal["name"].as_str()),
        (Some("river"), Some("River studios"))
    );
    let (_, all) = send(&server, "GET", "/api/v1/calendar", None, None).await?;
    let drops = cal["drops"].as_array().cloned().unwrap_or_default();
    let overlaps: Vec<(&str, Value)> = drops
        .iter()
        .map(|d| (d["id"].as_str().unwrap_or(""), d["overlaps"].clone()))
        .collect();
    assert_eq!(
        overlaps,
        [
            ("bowls", json!(["jugs"])),
            ("jugs", json!(["bowls"])),
            ("vases", json!([])),
            ("plates", json!([])),
            ("north-cups", json!([])),
        ]
    );
    for (mine, public) in drops
        .iter()
        .zip(all["drops"].as_array().into_iter().flatten())
    {
        let mut mine = mine.clone();
        mine.as_object_mut().map(|o| o.remove("overlaps"));
        assert_eq!(&mine, public, "the launch calendar's entry");
    }
    assert_eq!(drops.len(), 5);
    assert_eq!(drops[4]["maker"], "north", "{}", drops[4]);

    // A co-op of north alone lists north's drop alone.
    let (status, hill) = send(&server, "GET", "/api/v1/coops/hill/calendar", None, None).await?;
    let ids: Vec<&str> = hill["drops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!((status, ids), (200, vec!["north-cups"]));

    // A member maker reads its co-ops; another maker's answer is a missing co-op's.
    let (status, mine) = send(&server, "GET", "/api/v1/coops", None, Some(&north)).await?;
    assert_eq!(status, 200);
    assert_eq!(mine["coops"].as_array().map(Vec::len), Some(2), "{mine}");
    let (status, theirs) = send(&server, "GET", "/api/v1/coops", None, Some(&west)).await?;
    assert_eq!((status, theirs["coops"].clone()), (200, json!([])));
    for path in [
        "/api/v1/coops/hill",
        "/api/v1/coops/hill/overlaps",
        "/api/v1/coops/hill/kpis",
    ] {
        let (status, _) = send(&server, "GET", path, None, Some(&north)).await?;
        assert_eq!(status, 200, "north: {path}");
        let (status, answer) = send(&server, "GET", path, None, Some(&west)).await?;
        assert_eq!(
            (status, error(&answer).0),
            (404, "no_such_coop"),
            "west: {path}"
        );
    }
    // Managing co-ops is the operator's.
    let (status, answer) = send(
        &server,
        "PUT",
        "/api/v1/coops/hill/makers/west",
        None,
        Some(&north),
    )
    .await?;
    assert_eq!((status, error(&answer).0), (403, "forbidden"));

    // The overlaps route: operator only, each pair with the interval both are live.
    let (status, _) = send(&server, "GET", "/api/v1/coops/river/overlaps", None, None).await?;
    assert_eq!(status, 401);
    let (status, body) = admin(&server, "GET", "/api/v1/coops/river/overlaps", None).await?;
    assert_eq!(status, 200);
    let drop = |id: &str, starts: u64| json!({"id": id, "title": format!("Drop {id}"), "maker": "default", "starts_ms": starts, "duration_s": 3600});
    assert_eq!(
        body,
        json!({"coop": "river", "overlaps": [{
            "a": drop("bowls", t), "b": drop("jugs", t + HOUR / 2),
            "from_ms": t + HOUR / 2, "to_ms": t + HOUR,
            "from": StartsAt(t + HOUR / 2).to_rfc3339(), "to": StartsAt(t + HOUR).to_rfc3339(),
        }]})
    );
    let (_, none) = admin(&server, "GET", "/api/v1/coops/hill/overlaps", None).await?;
    assert_eq!(none["overlaps"], json!([]));

    // A drop that collides is made all the same, and its maker is warned: north's drop a
    // quarter of an hour into bowls collides with bowls and jugs on river (where default
    // is), with nothing on hill (north alone). A drop without a collision has no warning.
    assert!(made.get("coop_overlaps").is_none(), "{made}");
    let (status, clash) = send(
        &server,
        "POST",
        "/api/v1/drops",
        Some(scheduled("north-clash", t + HOUR / 4)),
        Some(&north),
    )
    .await?;
    assert_eq!(status, 201, "{clash}");
    let warned: Vec<(&str, &str, u64, u64)> = clash["coop_overlaps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            (
                w["coop"].as_str().unwrap_or(""),
                w["with"]["id"].as_str().unwrap_or(""),
                w["from_ms"].as_u64().unwrap_or(0),
                w["to_ms"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expected = vec![
        ("river", "bowls", t + HOUR / 4, t + HOUR),
        ("river", "jugs", t + HOUR / 2, t + HOUR / 4 + HOUR),
    ];
    assert_eq!(warned, expected, "{clash}");
    let (_, again) = send(
        &server,
        "GET",
        "/api/v1/drops/north-clash",
        None,
        Some(&north),
    )
    .await?;
    assert_eq!(again["coop_overlaps"], clash["coop_overlaps"]);
    server.stop().await
}

fn fact(kind: FactKind, maker: &str, drop: &str, viewer: &str, at: u64, detail: Value) -> Fact {
    Fact {
        id: format!("{}:{drop}:{viewer}", kind.as_str()),
        kind,
        maker: maker.into(),
        drop_id: Some(drop.into()),
        viewer_id: Some(viewer.into()),
        at_ms: at,
        detail,
    }
}

/// `viewers` attend; `buyer` claims and redeems `cents` an hour later; `claimer` claims only.
fn drop_facts(
    maker: &str,
    drop: &str,
    at: u64,
    viewers: &[&str],
    buyer: (&str, u64),
    claimer: Option<&str>,
) -> Vec<Fact> {
    let mut out: Vec<Fact> = viewers
        .iter()
        .map(|v| fact(FactKind::ViewerAttended, maker, drop, v, at, json!({})))
        .collect();
    let (b, cents) = buyer;
    let code = format!("{drop}-B");
    out.push(fact(
        FactKind::ClaimGranted,
        maker,
        drop,
        b,
        at + 1,
        json!({"code": code, "sku": "mug", "price_cents": cents}),
    ));
    out.push(fact(
        FactKind::ClaimRedeemed,
        maker,
        drop,
        b,
        at + 1 + HOUR,
        json!({"code": code, "amount_cents": cents}),
    ));
    if let Some(c) = claimer {
        let code = format!("{drop}-C");
        out.push(fact(
            FactKind::ClaimGranted,
            maker,
            drop,
            c,
            at + 2,
            json!({"code": code, "sku": "mug", "price_cents": 100}),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_op_kpis_show_each_maker_and_a_total_of_sums() -> Result<()> {
    let server = TestServer::start().await?;
    let t0 = server.state.clock.now_ms() - 30 * 24 * HOUR;
    // `default`: 4 viewers, 2 claimers, 1 buyer (1200). `north`: two drops, 1 + 2 viewers,
    // 2 buyers (800 + 1000), every claimer a buyer. `idle`: nothing.
    let mut facts = drop_facts(
        "default",
        "d-one",
        t0,
        &["ana", "bo", "cy", "dee"],
        ("ana", 1200),
        Some("bo"),
    );
    facts.extend(drop_facts(
        "north",
        "n-one",
        t0,
        &["eve"],
        ("eve", 800),
        None,
    ));
    facts.extend(drop_facts(
        "north",
        "n-two",
        t0 + 24 * HOUR,
        &["fay", "gus"],
        ("fay", 1000),
        None,
    ));
    server.state.ledger()?.record(&facts).await?;
    makers(&server, &["north", "idle"]).await?;
    admin(
        &server,
        "POST",
        "/api/v1/coops",
        Some(json!({"id": "river", "name": "River", "makers": ["default", "north", "idle"]})),
    )
    .await?;
    let (status, k) = admin(&server, "GET", "/api/v1/coops/river/kpis", None).await?;
    assert_eq!(status, 200, "{k}");
    assert_eq!(k["coop"], "river");
    let figures = |v: &Value| {
        [
            "drops",
            "unique_viewers",
            "claimers",
            "claims",
            "redeemed",
            "redeemed_48h",
            "revenue_cents",
            "buyers",
        ]
        .map(|f| v[f].as_u64().unwrap_or(u64::MAX))
    };
    let makers = k["makers"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = makers.iter().filter_map(|m| m["maker"].as_str()).collect();
    assert_eq!(names, ["default", "north", "idle"]);
    assert_eq!(figures(&makers[0]), [1, 4, 2, 2, 1, 1, 1200, 1]);
    assert_eq!(makers[0]["claim_rate"], json!(0.5));
    assert_eq!(makers[0]["conversion_48h"], json!(0.5));
    assert_eq!(figures(&makers[1]), [2, 3, 2, 2, 2, 2, 1800, 2]);
    assert_eq!(makers[1]["claim_rate"], json!(2.0 / 3.0));
    assert_eq!(makers[1]["conversion_48h"], json!(1.0));
    assert_eq!(figures(&makers[2]), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(makers[2]["claim_rate"], Value::Null);
    // The total: sums, and ratios of the sums (4/7 and 3/4), not means of the ratios.
    assert_eq!(figures(&k["total"]), [3, 7, 4, 4, 3, 3, 3000, 3]);
    assert_eq!(k["total"]["claim_rate"], json!(4.0 / 7.0));
    assert_eq!(k["total"]["conversion_48h"], json!(0.75));
    let (status, _) = send(&server, "GET", "/api/v1/coops/river/kpis", None, None).await?;
    assert_eq!(status, 401);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ledger_co_ops_answer_ledger_off() -> Result<()> {
    let server = TestServer::with(common::memory_options()?).await?;
    for (method, path, token) in [
        ("GET", "/api/v1/coops", Some(ADMIN)),
        ("GET", "/api/v1/coops/river/calendar", None),
        ("GET", "/api/v1/coops/river/kpis", Some(ADMIN)),
    ] {
        let (status, answer) = send(&server, method, path, None, token).await?;
        assert_eq!((status, error(&answer).0), (503, "ledger_off"), "{path}");
    }
    let (status, answer) =
        admin(&server, "POST", "/api/v1/coops", Some(json!({"name": "x"}))).await?;
    assert_eq!((status, error(&answer).0), (503, "ledger_off"));
    let resp = server
        .http
        .get(format!("{}/coops/river/calendar.ics", server.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 503);
    server.stop().await
}
