//! The waitlist over HTTP: one-click join, idempotence, bad input (nothing partial kept),
//! the maker's view (JSON and CSV), a viewer's own entry, and early access on the real
//! server's claims.

use crate::common;

use anyhow::Result;
use common::{ADMIN, TestServer, far_script};
use serde_json::{Value, json};

/// A drop with sizes, a start date and a one-hour early-access window.
fn spec(id: &str) -> Value {
    let mut spec = common::drop_spec(id, 3, 1, far_script());
    spec["inventory"][0]["variants"] = json!(["S", "M", "L"]);
    spec["starts_at"] = json!("2026-12-24T18:00:00+01:00");
    spec["early_access_s"] = json!(3600);
    spec
}

async fn join(
    server: &TestServer,
    drop: &str,
    token: Option<&str>,
    body: Value,
) -> Result<(u16, Value)> {
    let mut req = server
        .http
        .post(format!("{}/api/v1/drops/{drop}/waitlist", server.base))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn mine(server: &TestServer, drop: &str, token: &str) -> Result<(u16, Value)> {
    let resp = server
        .http
        .get(format!("{}/api/v1/drops/{drop}/waitlist/me", server.base))
        .bearer_auth(token)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waitlist_join_is_one_click_idempotent_and_refuses_bad_input() -> Result<()> {
    let server = TestServer::start().await?;
    let drop = server.create(spec("wl")).await?;
    let (_, created) = server.get(&format!("/api/v1/drops/{drop}")).await?;
    assert_eq!(created["starts_at"], "2026-12-24T17:00:00Z");
    assert_eq!(created["early_access_s"], 3600);
    let ana = server.mint("ana").await?;
    let bo = server.mint("bo").await?;

    // One click: no body fields needed at all.
    let (status, first) = join(&server, &drop, Some(&ana), json!({})).await?;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["position"], 1);
    assert_eq!(
        first["early_access"],
        json!({"window_s": 3600, "eligible": true})
    );
    let with_intent = json!({
        "intent": {"size": "M", "items": ["mug"], "note": "for my sister"},
        "consent": {"marketing": true},
        "contact": "ana@example.com"
    });
    let (status, again) = join(&server, &drop, Some(&ana), with_intent).await?;
    assert_eq!(status, 200, "an update: {again}");
    assert_eq!(again["position"], 1, "the same place in line");
    assert_eq!(again["entry"]["intent"]["size"], "M");
    assert_eq!(again["entry"]["contact"], "ana@example.com");
    let (status, second) = join(
        &server,
        &drop,
        Some(&bo),
        json!({"intent": {"items": ["jug"]}}),
    )
    .await?;
    assert_eq!((status, second["position"].clone()), (201, json!(2)));

    // Bad input: a clear 4xx, and nothing kept.
    let bad = [
        (
            json!({"intent": {"size": "XXL"}}),
            422,
            "invalid",
            Some("intent.size"),
        ),
        (
            json!({"intent": {"size": "M", "items": ["jug"]}}),
            422,
            "invalid",
            Some("intent.size"),
        ),
        (
            json!({"intent": {"items": ["teapot"]}}),
            422,
            "invalid",
            Some("intent.items[0]"),
        ),
        (
            json!({"intent": {"note": "x".repeat(501)}}),
            422,
            "invalid",
            Some("intent.note"),
        ),
        (
            json!({"contact": "bo@example.com"}),
            422,
            "invalid",
            Some("contact"),
        ),
        (
            json!({"consent": {"marketing": true}, "contact": "nope"}),
            422,
            "invalid",
            Some("contact"),
        ),
        (json!({"intent": {"size": 7}}), 400, "bad_request", None),
        (json!({"shoe_size": 44}), 400, "bad_request", None),
    ];
    for (body, status, code, field) in bad {
        let (got, answer) = join(&server, &drop, Some(&bo), body.clone()).await?;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{body} → {answer}");
        }
    }
    let (status, answer) = join(&server, &drop, None, json!({})).await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, answer) = join(&server, &drop, Some("dw1.forged.token"), json!({})).await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("bad_token"))
    );
    let (status, _) = join(&server, "no-such-drop", Some(&bo), json!({})).await?;
    assert_eq!(status, 404);
    let (_, bo_entry) = mine(&server, &drop, &bo).await?;
    assert_eq!(
        bo_entry["entry"]["intent"]["items"],
        json!(["jug"]),
        "unchanged by the refusals"
    );

    // The maker's view: entries, segments, consent; CSV on request.
    let (status, list) = server
        .get(&format!("/api/v1/drops/{drop}/waitlist"))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        (list["count"].clone(), list["consented"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(
        list["segments"],
        json!([
            {"size": null, "item": "jug", "count": 1},
            {"size": "M", "item": "mug", "count": 1}
        ])
    );
    let csv = server
        .http
        .get(format!("{}/api/v1/drops/{drop}/waitlist", server.base))
        .bearer_auth(ADMIN)
        .header("accept", "text/csv")
        .send()
        .await?;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("position,viewer_id,handle,size,items"));
    assert!(
        lines[1].starts_with("1,")
            && lines[1].contains(",ana,M,mug,for my sister,true,ana@example.com,"),
        "{text}"
    );
    let (status, _) = server
        .http
        .get(format!("{}/api/v1/drops/{drop}/waitlist", server.base))
        .bearer_auth(&bo)
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))?;
    assert_eq!(status, 403, "a viewer cannot read the list");

    // A viewer's own entry; a closed drop takes no more joins.
    let (status, _) = mine(&server, &drop, &server.mint("cy").await?).await?;
    assert_eq!(status, 404);
    server
        .ok(&format!("/api/v1/drops/{drop}/close"), json!({}))
        .await?;
    let (status, answer) =
        join(&server, &drop, Some(&server.mint("dee").await?), json!({})).await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("drop_closed"))
    );
    let (_, list) = server
        .get(&format!("/api/v1/drops/{drop}/waitlist"))
        .await?;
    assert_eq!(list["count"], 2);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_access_lets_the_waitlist_claim_first() -> Result<()> {
    let server = TestServer::start().await?;
    let drop = server.create(spec("early")).await?;
    let member = server.mint("member").await?;
    let (status, _) = join(&server, &drop, Some(&member), json!({})).await?;
    assert_eq!(status, 201);
    let (mut m, _) = server.join(&drop, Some(&member), None).await?;
    let mut public = server.watch_as(&drop, "public").await?;
    server.start_and_reveal(&drop).await?;
    let reveal = public.cue("reveal").await?;
    let opens = reveal["public_ms"]
        .as_u64()
        .expect("a reveal with early access says when the public may claim");
    assert_eq!(opens, reveal["at_ms"].as_u64().unwrap_or(0) + 3_600_000);
    let (_, snap) = server.get(&format!("/api/v1/drops/{drop}")).await?;
    assert_eq!(
        snap["early_access"],
        json!([{"sku": "mug", "public_ms": opens}])
    );
    assert_eq!(snap["open_skus"], json!([]));

    let refused = public.claim("mug", "p1").await?;
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["reason"], "not_open");
    assert_eq!(refused["opens_at_ms"], opens);
    let granted = m.claim("mug", "m1").await?;
    assert_eq!(granted["ok"], true, "{granted}");
    let (_, figures) = server.get(&format!("/api/v1/drops/{drop}/stats")).await?;
    assert_eq!(figures["claims"]["total"], 1, "the refusal took nothing");
    server.stop().await
}
