//! Makers' tokens and the operator: a token shown once, another for a rotation, revoked at
//! once (401); a maker cannot create or list makers; the operator as a maker
//! (`X-Dropwire-Maker`); the control panel's WebSocket login and the calendar by maker; a
//! hub without a ledger. (Every admin route against another maker: `tenancy`.)

use crate::common;
use crate::tenancy::{call, call_as, json_of, make_maker};

use anyhow::{Context, Result, ensure};
use common::{ADMIN, TestServer};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_revoked_at_once_and_makers_are_the_operators() -> Result<()> {
    let server = TestServer::start().await?;
    let (a, first_id) = make_maker(&server, "clay", "Clay").await?;
    let second = json_of(
        &server,
        &a,
        "post",
        "/api/v1/makers/clay/tokens",
        json!({"label": "shop"}),
    )
    .await?;
    let second_token = second["token"].as_str().context("token")?.to_owned();
    let second_id = second["id"].as_str().context("id")?.to_owned();
    ensure!(second_token.starts_with("dwm_") && second_token != a);
    let (status, _) = call(&server, &second_token, "get", "/api/v1/drops", None).await?;
    ensure!(status == 200, "the new token works: {status}");

    // Revoked: refused with 401 at once (the look-up cache forgets it), the other works.
    let (status, text) = call(
        &server,
        &a,
        "delete",
        &format!("/api/v1/makers/clay/tokens/{second_id}"),
        None,
    )
    .await?;
    ensure!(status == 200, "{status} {text}");
    let (status, text) = call(&server, &second_token, "get", "/api/v1/drops", None).await?;
    ensure!(
        status == 401 && text.contains("bad_token"),
        "{status} {text}"
    );
    let (status, _) = call(&server, &a, "get", "/api/v1/drops", None).await?;
    ensure!(status == 200);
    let (status, _) = call(&server, "dwm_made-up", "get", "/api/v1/drops", None).await?;
    ensure!(status == 401);

    // A maker cannot create or list makers; the view of itself never shows a token's text.
    let (status, _) = call(
        &server,
        &a,
        "post",
        "/api/v1/makers",
        Some(&json!({"name": "Evil"})),
    )
    .await?;
    ensure!(status == 403, "{status}");
    let me = json_of(&server, &a, "get", "/api/v1/makers/clay", Value::Null).await?;
    ensure!(
        !me.to_string().contains(&a[4..]) && me["tokens"][0]["id"] == first_id.as_str(),
        "{me}"
    );
    let (status, _) = call(&server, &a, "get", "/api/v1/makers/default", None).await?;
    ensure!(status == 404);
    let (status, _) = call(
        &server,
        ADMIN,
        "post",
        "/api/v1/makers",
        Some(&json!({"id": "clay", "name": "Again"})),
    )
    .await?;
    ensure!(status == 409);
    let (status, _) = call(
        &server,
        ADMIN,
        "post",
        "/api/v1/makers",
        Some(&json!({"id": "default", "name": "No"})),
    )
    .await?;
    ensure!(status == 409);

    // The operator as a maker (X-Dropwire-Maker): what it makes is that maker's.
    let spec = common::drop_spec("clay-cups", 5, 1, common::far_script());
    let resp = server
        .http
        .post(format!("{}/api/v1/drops", server.base))
        .bearer_auth(ADMIN)
        .header("X-Dropwire-Maker", "clay")
        .json(&spec)
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 201);
    let mine = json_of(&server, &a, "get", "/api/v1/drops", Value::Null).await?;
    ensure!(
        mine["drops"].as_array().map(Vec::len) == Some(1) && mine["drops"][0]["maker"] == "clay",
        "{mine}"
    );
    let resp = server
        .http
        .get(format!("{}/api/v1/drops", server.base))
        .bearer_auth(ADMIN)
        .header("X-Dropwire-Maker", "nobody")
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 404);
    server
        .create(common::drop_spec("house-cups", 5, 1, common::far_script()))
        .await?;
    let all = json_of(&server, ADMIN, "get", "/api/v1/drops", Value::Null).await?;
    ensure!(all["drops"].as_array().map(Vec::len) == Some(2), "{all}");
    let (_, text) = call(&server, &a, "get", "/api/v1/drops/house-cups", None).await?;
    ensure!(
        text.contains("not_found") && !text.contains("Speckled"),
        "{text}"
    );
    Ok(())
}

/// The control panel's WebSocket login takes a maker's token for that maker's drops only;
/// the public calendar names each drop's maker and lists one maker's with `?maker=`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_login_and_the_calendar_know_the_maker() -> Result<()> {
    let server = TestServer::start().await?;
    let (a, _) = make_maker(&server, "maker-a", "Maker A").await?;
    let (b, _) = make_maker(&server, "maker-b", "Maker B").await?;
    let mut spec = common::drop_spec("a-cups", 5, 1, common::far_script());
    spec["starts_at"] = json!("2999-01-01T10:00:00Z");
    json_of(&server, &a, "post", "/api/v1/drops", spec).await?;
    let mut spec = common::drop_spec("house-cups", 5, 1, common::far_script());
    spec["starts_at"] = json!("2999-01-02T10:00:00Z");
    server.create(spec).await?;

    let mut own = server.connect("a-cups").await?;
    own.send(json!({"type": "hello", "admin": a})).await?;
    let welcome = own.next_of("welcome").await?;
    ensure!(welcome["maker"] == true, "{welcome}");
    let mut other = server.connect("a-cups").await?;
    other.send(json!({"type": "hello", "admin": b})).await?;
    let error = other.next_of("error").await?;
    ensure!(error["code"] == "bad_admin_token", "{error}");
    let welcome = other.next_of("welcome").await?;
    ensure!(welcome.get("maker").is_none(), "{welcome}");

    let (_, text) = call(&server, "", "get", "/api/v1/calendar", None).await?;
    let all: Value = serde_json::from_str(&text)?;
    let makers: Vec<(&str, &str)> = all["drops"]
        .as_array()
        .context("drops")?
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap_or(""),
                d["maker"].as_str().unwrap_or(""),
            )
        })
        .collect();
    ensure!(
        makers == [("a-cups", "maker-a"), ("house-cups", "default")],
        "{makers:?}"
    );
    let (_, text) = call(&server, "", "get", "/api/v1/calendar?maker=maker-a", None).await?;
    let one: Value = serde_json::from_str(&text)?;
    ensure!(
        one["drops"].as_array().map(Vec::len) == Some(1) && one["drops"][0]["id"] == "a-cups",
        "{one}"
    );
    let (status, text) = call(&server, "", "get", "/calendar.ics?maker=default", None).await?;
    ensure!(
        status == 200 && text.contains("house-cups@") && !text.contains("a-cups@"),
        "{text}"
    );
    // A maker id that cannot be one is refused, naming the query parameter.
    for path in [
        "/api/v1/calendar?maker=",
        "/api/v1/calendar?maker=Not%20OK",
        "/calendar.ics?maker=",
    ] {
        let (status, text) = call(&server, "", "get", path, None).await?;
        ensure!(
            status == 400 && text.contains("maker"),
            "{path}: {status} {text}"
        );
    }
    Ok(())
}

/// Without a ledger there are no makers: their routes answer 503 `ledger_off`, the operator
/// works as before, and a maker token cannot be checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ledger_the_operator_alone() -> Result<()> {
    let server = TestServer::with(common::memory_options()?).await?;
    let (status, text) = call(
        &server,
        ADMIN,
        "post",
        "/api/v1/makers",
        Some(&json!({"name": "A"})),
    )
    .await?;
    ensure!(
        status == 503 && text.contains("ledger_off"),
        "{status} {text}"
    );
    let (status, _) = call(&server, ADMIN, "get", "/api/v1/makers/default", None).await?;
    ensure!(status == 503);
    let (status, text) = call(&server, "dwm_anything", "get", "/api/v1/drops", None).await?;
    ensure!(
        status == 503 && text.contains("ledger_off"),
        "{status} {text}"
    );
    let (status, _) = call(&server, ADMIN, "get", "/api/v1/drops", None).await?;
    ensure!(status == 200);
    let (status, _) = call_as(
        &server,
        ADMIN,
        Some("default"),
        "get",
        "/api/v1/drops",
        None,
    )
    .await?;
    ensure!(status == 200);
    Ok(())
}

/// A token revoked through another node (here: straight in the shared ledger, past this
/// node's look-up cache) is refused here too once the cached look-up lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_elsewhere_is_refused_here_too() -> Result<()> {
    let server = TestServer::start().await?;
    let (a, token_id) = make_maker(&server, "clay", "Clay").await?;
    let (status, _) = call(&server, &a, "get", "/api/v1/drops", None).await?;
    ensure!(status == 200, "cached as valid: {status}");
    let ledger = server.state.ledger()?.clone();
    let revoked = ledger
        .revoke_maker_token("clay", &token_id, 1)
        .await?
        .context("its token")?;
    ensure!(revoked.revoked_ms == Some(1));
    common::eventually("the revoked token is refused", || async {
        let (status, _) = call(&server, &a, "get", "/api/v1/drops", None).await?;
        ensure!(status == 200 || status == 401, "{status}");
        Ok(status == 401)
    })
    .await
}
