//! Keyword quests over real sockets: a chat message holding the quest's word (whole word,
//! any case) inside its window earns it; with `first_n`, exactly the first N viewers do,
//! however many send it at once, and the rest hear `full`.

use crate::chat::say;
use crate::common;

use anyhow::Result;
use common::{TestServer, Viewer, drop_spec};
use futures_util::future::try_join_all;
use serde_json::{Value, json};

fn keyword_script(first_n: Option<u32>) -> Value {
    let mut quest = json!({"at_s": 3000, "type": "quest", "quest": "keyword", "word": "Glaze",
        "points": 25, "ttl_s": 600, "title": "Say glaze"});
    if let Some(n) = first_n {
        quest["first_n"] = json!(n);
    }
    json!([
        {"at_s": 0, "type": "intro"},
        quest,
        {"at_s": 3600, "type": "close"}
    ])
}

/// The `quest_result`s a chat message brought, read up to the `pong` of a ping sent after
/// it (a connection answers its frames in order).
async fn results_of(v: &mut Viewer, text: &str, rid: &str) -> Result<(Value, Vec<Value>)> {
    let chat = say(v, text, rid).await?;
    v.send(json!({"type": "ping", "ts": rid})).await?;
    let mut quests = Vec::new();
    loop {
        let f = v.next().await?;
        match f["type"].as_str() {
            Some("quest_result") => quests.push(f),
            Some("pong") if f["ts"] == rid => return Ok((chat, quests)),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyword_in_chat_earns_the_quest_in_its_window() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("chat-keyword", 5, 1, keyword_script(None)))
        .await?;
    let mut ana = server.watch_as(&id, "ana").await?;
    server
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    // Before the quest fires: the word earns nothing.
    let (chat, quests) = results_of(&mut ana, "glaze!", "k0").await?;
    assert_eq!((chat["ok"].as_bool(), quests.len()), (Some(true), 0));
    server
        .ok(&format!("/api/v1/drops/{id}/fire"), json!({"cue": 1}))
        .await?;
    ana.cue("quest").await?;
    // Not the whole word: nothing.
    let (_, quests) = results_of(&mut ana, "glazed mugs", "k1").await?;
    assert_eq!(quests, Vec::<Value>::new());
    let (_, quests) = results_of(&mut ana, "love the GLAZE", "k2").await?;
    assert_eq!(
        quests,
        [json!({"type": "quest_result", "rid": "k2", "ok": true, "quest": "s1", "points": 25})]
    );
    // Earned once: saying it again is not answered again.
    let (_, quests) = results_of(&mut ana, "glaze glaze", "k3").await?;
    assert_eq!(quests, Vec::<Value>::new());
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_n_is_earned_exactly_once_by_concurrent_chatters() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("chat-first-n", 5, 1, keyword_script(Some(1))))
        .await?;
    let mut ana = server.watch_as(&id, "ana").await?;
    let mut bo = server.watch_as(&id, "bo").await?;
    server
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    server
        .ok(&format!("/api/v1/drops/{id}/fire"), json!({"cue": 1}))
        .await?;
    ana.cue("quest").await?;
    bo.cue("quest").await?;
    // Both at once, each twice.
    let both = try_join_all([&mut ana, &mut bo].into_iter().map(|v| async move {
        let (_, first) = results_of(v, "glaze", "g1").await?;
        let (_, second) = results_of(v, "Glaze again", "g2").await?;
        anyhow::Ok([first, second].concat())
    }))
    .await?;
    let all: Vec<&Value> = both.iter().flatten().collect();
    let won: Vec<&&Value> = all.iter().filter(|q| q["ok"] == true).collect();
    assert_eq!(won.len(), 1, "exactly one award: {all:?}");
    assert_eq!(won[0]["points"], 25);
    let loser = both
        .iter()
        .position(|qs| qs.iter().all(|q| q["ok"] == false));
    let loser = loser.ok_or_else(|| anyhow::anyhow!("one chatter won nothing: {all:?}"))?;
    assert_eq!(both[loser].len(), 2, "the other hears full twice: {all:?}");
    assert!(both[loser].iter().all(|q| q["reason"] == "full"));
    let f = server
        .store()
        .figures(&dropwire_core::DropId::parse(&id)?)
        .await?;
    assert_eq!((f.awards, f.leaderboard.len()), (1, 1));
    server.stop().await
}
