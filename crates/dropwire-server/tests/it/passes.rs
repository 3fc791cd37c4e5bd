//! Collectible passes over the real server: a maker's rules (validated, naming the field);
//! a claim over a real WebSocket earns a pass once; the viewer reads it with its own token,
//! the maker by the viewer's id; the pass token verifies against the published JWK with
//! `jsonwebtoken` alone, and dropwire's verification honours the maker's revocation; an
//! early-access pass lets its holder claim in the early window over a real WebSocket (its
//! revocation ends that), and a pass granting a higher per-viewer limit lets its holder
//! claim more until it is revoked.

use crate::common;

use anyhow::{Context, Result};
use common::{TestServer, drop_spec, eventually, far_script};
use serde_json::{Value, json};

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = server
        .http
        .request(method.parse()?, format!("{}{path}", server.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_validated_and_kept() -> Result<()> {
    let server = TestServer::start().await?;
    let admin = Some(common::ADMIN);
    let rule = json!({"id": "regular", "name": "Regular", "earned_by": {"attendance": 3},
                      "grants": {"early_access": true, "per_viewer_limit": 4}});
    let (status, made) = send(
        &server,
        "POST",
        "/api/v1/passes/rules",
        admin,
        Some(rule.clone()),
    )
    .await?;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (&made["maker"], &made["earned_by"], &made["grants"]),
        (
            &json!("default"),
            &json!({"attendance": 3}),
            &json!({"early_access": true, "per_viewer_limit": 4})
        )
    );
    let (status, _) = send(&server, "POST", "/api/v1/passes/rules", admin, Some(rule)).await?;
    assert_eq!(status, 409);
    for (body, field) in [
        (
            json!({"name": "x", "earned_by": {"claims": 0}}),
            "earned_by.claims",
        ),
        (
            json!({"name": "x", "earned_by": {"quest_points": 2_000_000}}),
            "earned_by.quest_points",
        ),
        (json!({"name": "", "earned_by": {"claims": 1}}), "name"),
        (
            json!({"name": "x", "earned_by": {"claims": 1}, "grants": {"per_viewer_limit": 0}}),
            "grants.per_viewer_limit",
        ),
        (
            json!({"id": "Not OK", "name": "x", "earned_by": {"claims": 1}}),
            "id",
        ),
    ] {
        let (status, err) =
            send(&server, "POST", "/api/v1/passes/rules", admin, Some(body)).await?;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{err}"
        );
    }
    let (status, err) = send(
        &server,
        "POST",
        "/api/v1/passes/rules",
        admin,
        Some(json!({"name": "x", "earned_by": {"visits": 1}})),
    )
    .await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{err}"
    );
    let (_, list) = send(&server, "GET", "/api/v1/passes/rules", admin, None).await?;
    assert_eq!(list["rules"].as_array().map(Vec::len), Some(1));
    let (status, got) = send(&server, "GET", "/api/v1/passes/rules/regular", admin, None).await?;
    assert_eq!((status, &got["name"]), (200, &json!("Regular")));
    assert_eq!(
        send(
            &server,
            "DELETE",
            "/api/v1/passes/rules/regular",
            admin,
            None
        )
        .await?
        .0,
        204
    );
    assert_eq!(
        send(
            &server,
            "DELETE",
            "/api/v1/passes/rules/regular",
            admin,
            None
        )
        .await?
        .0,
        404
    );
    assert_eq!(
        send(&server, "GET", "/api/v1/passes/rules/regular", admin, None)
            .await?
            .0,
        404
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_earns_a_portable_pass_that_revocation_invalidates() -> Result<()> {
    let server = TestServer::start().await?;
    let admin = Some(common::ADMIN);
    let (status, _) = send(
        &server,
        "POST",
        "/api/v1/passes/rules",
        admin,
        Some(json!({"id": "buyer", "name": "Buyer", "earned_by": {"claims": 1}})),
    )
    .await?;
    assert_eq!(status, 201);
    let id = server
        .create(drop_spec("pass-mugs", 5, 2, far_script()))
        .await?;
    let minted = server
        .ok("/api/v1/viewers", json!({"handle": "ana"}))
        .await?;
    let (viewer, token) = (
        minted["viewer_id"]
            .as_str()
            .context("viewer_id")?
            .to_owned(),
        minted["token"].as_str().context("token")?.to_owned(),
    );
    let (mut ana, _) = server.join(&id, Some(&token), None).await?;
    ana.next_of("snapshot").await?;
    server.start_and_reveal(&id).await?;
    ana.cue("reveal").await?;
    assert_eq!(ana.claim("mug", "c1").await?["ok"], true);
    assert_eq!(ana.claim("mug", "c2").await?["ok"], true);

    let path = format!("/api/v1/viewers/{viewer}/passes");
    eventually("the pass is earned", || async {
        let (_, body) = send(&server, "GET", &path, admin, None).await?;
        Ok(body["passes"].as_array().is_some_and(|p| !p.is_empty()))
    })
    .await?;
    // Earned once, though two claims count.
    let (_, theirs) = send(&server, "GET", &path, admin, None).await?;
    let passes = theirs["passes"].as_array().context("passes")?;
    assert_eq!(passes.len(), 1, "{theirs}");
    let pass = &passes[0];
    assert_eq!(
        (&pass["rule"], &pass["maker"], &pass["viewer_id"]),
        (&json!("buyer"), &json!("default"), &json!(viewer))
    );
    let (status, mine) = send(&server, "GET", "/api/v1/me/passes", Some(&token), None).await?;
    assert_eq!((status, &mine), (200, &theirs));
    assert_eq!(
        send(&server, "GET", "/api/v1/me/passes", None, None)
            .await?
            .0,
        401
    );
    let pass_token = pass["token"].as_str().context("token")?;

    // Verified independently, with the published key alone.
    let jwks: Value = server
        .http
        .get(format!("{}/.well-known/jwks.json", server.base))
        .send()
        .await?
        .json()
        .await?;
    let jwk = &jwks["keys"][0];
    assert_eq!(
        (&jwk["kty"], &jwk["crv"], &jwk["alg"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"))
    );
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().context("x")?)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let decoded = jsonwebtoken::decode::<Value>(pass_token, &key, &validation)?;
    assert_eq!(decoded.header.kid.as_deref(), jwk["kid"].as_str());
    let claims = decoded.claims;
    assert_eq!(
        (
            &claims["iss"],
            &claims["sub"],
            &claims["maker"],
            &claims["pass"],
            &claims["rule"]
        ),
        (
            &json!("dropwire"),
            &json!(viewer),
            &json!("default"),
            &pass["id"],
            &json!("buyer")
        )
    );
    assert_eq!(
        claims["iat"].as_u64(),
        pass["earned_ms"].as_u64().map(|ms| ms / 1000)
    );
    // A tampered token does not verify.
    let mut forged = pass_token.to_owned();
    forged.push('A');
    assert!(jsonwebtoken::decode::<Value>(&forged, &key, &validation).is_err());

    let verify = |t: String| {
        let server = &server;
        async move {
            send(
                server,
                "POST",
                "/api/v1/passes/verify",
                None,
                Some(json!({"token": t})),
            )
            .await
        }
    };
    let (status, ok) = verify(pass_token.to_owned()).await?;
    assert_eq!(
        (status, &ok["valid"], &ok["claims"]["pass"]),
        (200, &json!(true), &pass["id"]),
        "{ok}"
    );
    let (_, bad) = verify(forged).await?;
    assert_eq!(
        (&bad["valid"], &bad["reason"]),
        (&json!(false), &json!("bad_signature"))
    );
    let (_, junk) = verify("x".repeat(5000)).await?;
    assert_eq!(junk["reason"], "bad_signature");

    // Revoked by the maker: dropwire's verification says so (the signature stays good).
    let pass_id = pass["id"].as_str().context("id")?;
    let (status, revoked) = send(
        &server,
        "DELETE",
        &format!("/api/v1/passes/{pass_id}"),
        admin,
        None,
    )
    .await?;
    assert_eq!(status, 200, "{revoked}");
    let at = revoked["revoked_ms"].as_u64().context("revoked_ms")?;
    let (_, no) = verify(pass_token.to_owned()).await?;
    assert_eq!(
        (&no["valid"], &no["reason"], no["revoked_ms"].as_u64()),
        (&json!(false), &json!("revoked"), Some(at)),
        "{no}"
    );
    assert!(jsonwebtoken::decode::<Value>(pass_token, &key, &validation).is_ok());
    let (_, after) = send(&server, "GET", "/api/v1/me/passes", Some(&token), None).await?;
    assert_eq!(after["passes"][0]["revoked_ms"].as_u64(), Some(at));
    assert_eq!(
        send(&server, "DELETE", "/api/v1/passes/pass_nope", admin, None)
            .await?
            .0,
        404
    );
    Ok(())
}

/// A viewer's id and token.
async fn viewer(server: &TestServer, handle: &str) -> Result<(String, String)> {
    let minted = server
        .ok("/api/v1/viewers", json!({"handle": handle}))
        .await?;
    Ok((
        minted["viewer_id"]
            .as_str()
            .context("viewer_id")?
            .to_owned(),
        minted["token"].as_str().context("token")?.to_owned(),
    ))
}

/// Makes the pass rule `rule` (earned by attending `drops` drops), and a viewer `handle`
/// who attends that many drops: its id, its token, and the admin path of its passes once
/// the pass is there.
async fn earn_attendance_pass(
    server: &TestServer,
    rule: Value,
    handle: &str,
    drops: u32,
) -> Result<(String, String, String)> {
    let (status, body) = send(
        server,
        "POST",
        "/api/v1/passes/rules",
        Some(common::ADMIN),
        Some(rule),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (id, token) = viewer(server, handle).await?;
    for n in 1..=drops {
        let warmup = server
            .create(drop_spec(&format!("warmup-{n}"), 5, 1, far_script()))
            .await?;
        let (mut v, _) = server.join(&warmup, Some(&token), None).await?;
        v.next_of("snapshot").await?;
    }
    let path = format!("/api/v1/viewers/{id}/passes");
    eventually("the pass", || async {
        let (_, body) = send(server, "GET", &path, Some(common::ADMIN), None).await?;
        Ok(body["passes"].as_array().is_some_and(|p| p.len() == 1))
    })
    .await?;
    Ok((id, token, path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_access_pass_lets_its_holder_claim_before_the_public() -> Result<()> {
    let server = TestServer::start().await?;
    let rule = json!({"id": "regular", "name": "Regular", "earned_by": {"attendance": 2},
                      "grants": {"early_access": true}});
    let (_, regular_token, path) = earn_attendance_pass(&server, rule, "regular", 2).await?;

    let mut spec = drop_spec("early-pass", 3, 1, far_script());
    spec["early_access_s"] = json!(3600);
    let drop = server.create(spec).await?;
    let (mut holder, _) = server.join(&drop, Some(&regular_token), None).await?;
    holder.next_of("snapshot").await?;
    let mut public = server.watch_as(&drop, "public").await?;
    server.start_and_reveal(&drop).await?;
    let reveal = public.cue("reveal").await?;
    let opens = reveal["public_ms"].as_u64().context("public_ms")?;
    let refused = public.claim("mug", "p1").await?;
    assert_eq!(
        (&refused["ok"], &refused["reason"]),
        (&json!(false), &json!("not_open")),
        "{refused}"
    );
    assert_eq!(refused["opens_at_ms"], opens);
    holder.cue("reveal").await?;
    let granted = holder.claim("mug", "h1").await?;
    assert_eq!(granted["ok"], true, "{granted}");

    // Revoked, the pass admits no more: the next drop's early window refuses its holder.
    let (_, passes) = send(&server, "GET", &path, Some(common::ADMIN), None).await?;
    let pass_id = passes["passes"][0]["id"].as_str().context("pass id")?;
    let revoke = format!("/api/v1/passes/{pass_id}");
    assert_eq!(
        send(&server, "DELETE", &revoke, Some(common::ADMIN), None)
            .await?
            .0,
        200
    );
    let mut spec = drop_spec("early-revoked", 3, 1, far_script());
    spec["early_access_s"] = json!(3600);
    let drop = server.create(spec).await?;
    let (mut former, _) = server.join(&drop, Some(&regular_token), None).await?;
    former.next_of("snapshot").await?;
    server.start_and_reveal(&drop).await?;
    former.cue("reveal").await?;
    let refused = former.claim("mug", "f1").await?;
    assert_eq!(refused["reason"], "not_open", "{refused}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_raises_its_holders_per_viewer_limit_until_revoked() -> Result<()> {
    let server = TestServer::start().await?;
    let rule = json!({"id": "collector", "name": "Collector", "earned_by": {"attendance": 1},
                      "grants": {"per_viewer_limit": 3}});
    let (_, holder_token, path) = earn_attendance_pass(&server, rule, "holder", 1).await?;

    // The SKU's limit is 1: the holder claims 3, anyone else 1.
    let drop = server
        .create(drop_spec("raised", 10, 1, far_script()))
        .await?;
    let (mut holder, _) = server.join(&drop, Some(&holder_token), None).await?;
    holder.next_of("snapshot").await?;
    let mut other = server.watch_as(&drop, "other").await?;
    server.start_and_reveal(&drop).await?;
    holder.cue("reveal").await?;
    other.cue("reveal").await?;
    let mut answers = Vec::new();
    for k in 0..4 {
        let r = holder.claim("mug", &format!("h{k}")).await?;
        answers.push((r["ok"].clone(), r["reason"].clone()));
    }
    let granted = answers.iter().filter(|(ok, _)| ok == &json!(true)).count();
    assert_eq!(granted, 3, "{answers:?}");
    assert_eq!(answers[3], (json!(false), json!("limit_reached")));
    assert_eq!(other.claim("mug", "o1").await?["ok"], true);
    let second = other.claim("mug", "o2").await?;
    assert_eq!(second["reason"], "limit_reached", "{second}");

    // Revoked, the pass raises nothing on the next connection.
    let (_, passes) = send(&server, "GET", &path, Some(common::ADMIN), None).await?;
    let pass_id = passes["passes"][0]["id"].as_str().context("pass id")?;
    let revoke = format!("/api/v1/passes/{pass_id}");
    let (status, _) = send(&server, "DELETE", &revoke, Some(common::ADMIN), None).await?;
    assert_eq!(status, 200);
    let next = server
        .create(drop_spec("raised-2", 10, 1, far_script()))
        .await?;
    let (mut former, _) = server.join(&next, Some(&holder_token), None).await?;
    former.next_of("snapshot").await?;
    server.start_and_reveal(&next).await?;
    former.cue("reveal").await?;
    assert_eq!(former.claim("mug", "f1").await?["ok"], true);
    let refused = former.claim("mug", "f2").await?;
    assert_eq!(refused["reason"], "limit_reached", "{refused}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ledger_passes_answer_ledger_off() -> Result<()> {
    let server = TestServer::with(common::memory_options()?).await?;
    let admin = Some(common::ADMIN);
    for (method, path, token) in [
        ("GET", "/api/v1/passes/rules", admin),
        ("GET", "/api/v1/viewers/ana/passes", admin),
        ("POST", "/api/v1/passes/verify", None),
    ] {
        let body = (method == "POST").then(|| json!({"token": "x"}));
        let (status, err) = send(&server, method, path, token, body).await?;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (503, Some("ledger_off")),
            "{path}"
        );
    }
    let resp = server
        .http
        .get(format!("{}/.well-known/jwks.json", server.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 503);
    // A viewer still joins a drop with early access (no pass to look up).
    let mut spec = drop_spec("no-ledger-early", 3, 1, far_script());
    spec["early_access_s"] = json!(60);
    let drop = server.create(spec).await?;
    server.watch_as(&drop, "ana").await?;
    Ok(())
}
