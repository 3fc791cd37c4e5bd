//! Quests over real sockets: `be_there` by the `here` frame, `claim_within` and
//! `redeem_within` by claims and redemptions in the window; each viewer once, the points
//! on the leaderboard broadcast, each award a `quest.awarded` fact. Windows are decided by
//! cue order (a claim before the quest fired earns nothing), never by waiting; the end of
//! a window is the hub's on tokio's paused clock (last test).

use crate::common;

use std::sync::Arc;

use anyhow::Result;
use common::{TestServer, Viewer, drop_spec, eventually};
use dropwire_core::DropSpec;
use dropwire_core::protocol::{QuestRef, ServerMsg};
use dropwire_server::AppState;
use dropwire_server::auth::Viewer as Who;
use dropwire_server::clock::Clock;
use serde_json::{Value, json};

/// Intro; quests far in the future (fire them by index); a reveal of `mug`; the close.
fn quest_script() -> Value {
    json!([
        {"at_s": 0, "type": "intro"},
        {"at_s": 3000, "type": "quest", "quest": "be_there", "points": 40, "ttl_s": 600, "title": "Say hi"},
        {"at_s": 3001, "type": "quest", "quest": "claim_within", "points": 30, "ttl_s": 600, "title": "Claim now"},
        {"at_s": 3002, "type": "quest", "quest": "redeem_within", "points": 20, "ttl_s": 600, "title": "Check out now"},
        {"at_s": 3003, "type": "reveal", "sku": "mug"},
        {"at_s": 3600, "type": "close"}
    ])
}

async fn fire(server: &TestServer, id: &str, cue: usize) -> Result<()> {
    server
        .ok(&format!("/api/v1/drops/{id}/fire"), json!({"cue": cue}))
        .await?;
    Ok(())
}

async fn here(v: &mut Viewer, quest: Value, rid: &str) -> Result<Value> {
    let mut frame = json!({"type": "here", "rid": rid});
    if !quest.is_null() {
        frame["quest"] = quest;
    }
    v.send(frame).await?;
    v.next_of("quest_result").await
}

/// Reads leaderboard broadcasts until one shows `want` (handle, points).
async fn board(v: &mut Viewer, want: &[(&str, u64)]) -> Result<()> {
    let want: Vec<Value> = want
        .iter()
        .zip(1..)
        .map(|((h, p), rank)| json!({"rank": rank, "handle": h, "points": p}))
        .collect();
    loop {
        let frame = v.next_of("leaderboard").await?;
        if frame["top"].as_array() == Some(&want) {
            return Ok(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn be_there_awards_each_viewer_once_and_the_board_shows_it() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("quest-here", 5, 1, quest_script()))
        .await?;
    let mut ana = server.watch_as(&id, "ana").await?;
    let mut bo = server.watch_as(&id, "bo").await?;
    let (mut anon, _) = server.join(&id, None, None).await?;
    server
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    // Before the quest fires: nothing open.
    let early = here(&mut ana, json!(1), "h0").await?;
    assert_eq!(
        (early["ok"].as_bool(), early["reason"].as_str()),
        (Some(false), Some("not_open"))
    );
    fire(&server, &id, 1).await?;
    let cue = ana.cue("quest").await?;
    assert_eq!(
        (cue["index"].as_u64(), cue["cue"]["quest"].as_str()),
        (Some(1), Some("be_there"))
    );
    bo.cue("quest").await?;

    let won = here(&mut ana, json!(1), "h1").await?;
    assert_eq!(
        won,
        json!({"type": "quest_result", "rid": "h1", "ok": true, "quest": "s1", "points": 40})
    );
    // The same rid again: the same answer; another rid: already awarded.
    assert_eq!(here(&mut ana, json!("s1"), "h1").await?, won);
    let again = here(&mut ana, json!(null), "h2").await?;
    assert_eq!(
        (again["ok"].as_bool(), again["reason"].as_str()),
        (Some(false), Some("already_awarded"))
    );
    // No quest of that name, a quest of another kind, no token.
    let none = here(&mut bo, json!("s9"), "x").await?;
    assert_eq!(none["reason"], "not_open");
    fire(&server, &id, 2).await?;
    bo.cue("quest").await?;
    assert_eq!(here(&mut bo, json!(2), "x2").await?["reason"], "not_open");
    assert_eq!(
        here(&mut anon, json!(1), "a").await?["reason"],
        "unauthorized"
    );
    // Bo with the latest open be_there quest (no name given).
    assert_eq!(here(&mut bo, json!(null), "b1").await?["points"], 40);
    board(&mut ana, &[("ana", 40), ("bo", 40)]).await?;

    let path = format!("/api/v1/ledger/facts?drop={id}&kind=quest.awarded");
    eventually("two quest.awarded facts", || async {
        let (_, body) = server.get(&path).await?;
        Ok(body["facts"].as_array().map(Vec::len) == Some(2))
    })
    .await?;
    let (_, body) = server.get(&path).await?;
    let fact = &body["facts"][0];
    assert_eq!(
        fact["detail"],
        json!({"quest": "s1", "kind": "be_there", "points": 40})
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_and_redemptions_in_the_window_earn_their_quests() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("quest-claims", 5, 1, quest_script()))
        .await?;
    let mut ana = server.watch_as(&id, "ana").await?;
    let mut bo = server.watch_as(&id, "bo").await?;
    server
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    fire(&server, &id, 4).await?;
    ana.cue("reveal").await?;
    // Bo claims before the claim quest fires: early-bird points only.
    let bo_claim = bo.claim("mug", "b1").await?;
    assert_eq!(bo_claim["ok"], true);
    fire(&server, &id, 2).await?;
    ana.cue("quest").await?;
    let ana_claim = ana.claim("mug", "a1").await?;
    assert_eq!(
        (&ana_claim["ok"], &ana_claim["rid"]),
        (&json!(true), &json!("a1"))
    );
    // 95 for the second mug, 30 for the quest.
    board(&mut ana, &[("ana", 125), ("bo", 100)]).await?;
    // A retried claim is answered alike and earns nothing more.
    assert_eq!(ana.claim("mug", "a1").await?, ana_claim);

    // Bo redeems once the redeem quest runs; ana redeemed before it.
    let redeem = |code: &Value| format!("/api/v1/claims/{}/redeem", code.as_str().unwrap_or(""));
    server.ok(&redeem(&ana_claim["code"]), json!({})).await?;
    fire(&server, &id, 3).await?;
    ana.cue("quest").await?;
    server.ok(&redeem(&bo_claim["code"]), json!({})).await?;
    board(&mut ana, &[("ana", 125), ("bo", 120)]).await?;
    server.stop().await
}

/// The end of a window on tokio's paused clock, at the hub: in time, earned; one
/// millisecond past the window, not open.
#[tokio::test(start_paused = true)]
async fn a_be_there_window_ends_ttl_after_the_quest_fires() -> Result<()> {
    let mut opts = common::memory_options()?;
    opts.clock = Clock::tokio_anchored();
    let state = AppState::start(opts).await?;
    let spec: DropSpec = serde_json::from_value(drop_spec(
        "quest-window",
        5,
        1,
        json!([
            {"at_s": 0, "type": "intro"},
            {"at_s": 10, "type": "quest", "quest": "be_there", "points": 7, "ttl_s": 30},
            {"at_s": 3600, "type": "close"}
        ]),
    ))?;
    let hub = common::hub_of(&state, "quest-window", spec).await?;
    hub.control(dropwire_core::ControlAction::Start).await?;
    let who = |name: &str| Who {
        id: format!("v-{name}"),
        handle: name.into(),
    };
    let ask = |hub: Arc<dropwire_server::hub::DropHub>, name: &'static str| async move {
        match hub
            .here(Some(&who(name)), Some(QuestRef::Index(1)), "r".into())
            .await
        {
            ServerMsg::QuestResult {
                ok, points, reason, ..
            } => (ok, points, reason),
            other => panic!("{other:?}"),
        }
    };
    tokio::time::advance(std::time::Duration::from_millis(10_000)).await;
    assert_eq!(ask(Arc::clone(&hub), "ana").await, (true, Some(7), None));
    tokio::time::advance(std::time::Duration::from_millis(29_999)).await;
    assert_eq!(ask(Arc::clone(&hub), "bo").await, (true, Some(7), None));
    tokio::time::advance(std::time::Duration::from_millis(1)).await;
    assert_eq!(
        ask(Arc::clone(&hub), "cy").await,
        (false, None, Some("not_open".into()))
    );
    let f = state.store.figures(&hub.id).await?;
    assert_eq!((f.awards, f.leaderboard.len()), (2, 2));
    Ok(())
}

/// Two hub nodes on one Redis: one viewer tapping on both at once earns the quest once,
/// and both nodes' viewers see the same board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_nodes_a_quest_is_earned_once_and_every_board_shows_it() -> Result<()> {
    let _heavy = dropwire_store::testing::heavy().await;
    let redis = dropwire_store::testing::RedisServer::start();
    let nodes = [
        common::redis_node(&redis, "a", Clock::System).await?,
        common::redis_node(&redis, "b", Clock::System).await?,
    ];
    let id = nodes[0]
        .create(drop_spec("quest-nodes", 5, 1, quest_script()))
        .await?;
    let token = nodes[0].mint("ana").await?;
    let mut anas = Vec::new();
    for n in &nodes {
        let (mut v, _) = n.join(&id, Some(&token), None).await?;
        v.next_of("snapshot").await?;
        anas.push(v);
    }
    let mut bo = nodes[1].watch_as(&id, "bo").await?;
    nodes[0]
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    fire(&nodes[0], &id, 1).await?;
    for v in anas.iter_mut().chain([&mut bo]) {
        v.cue("quest").await?;
    }
    let answers = futures_util::future::try_join_all(
        anas.iter_mut()
            .enumerate()
            .map(|(i, v)| async move { here(v, json!(1), &format!("n{i}")).await }),
    )
    .await?;
    let won: Vec<_> = answers.iter().filter(|a| a["ok"] == true).collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    assert!(
        answers.iter().any(|a| a["reason"] == "already_awarded"),
        "{answers:?}"
    );
    assert_eq!(here(&mut bo, json!("s1"), "b").await?["points"], 40);
    for v in anas.iter_mut().chain([&mut bo]) {
        board(v, &[("ana", 40), ("bo", 40)]).await?;
    }
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}
