//! Webhooks and crashes, with the real binary: a `kill -9` mid-delivery loses no message
//! (after the restart each is delivered, with its id); two nodes sharing a PostgreSQL
//! ledger send each message once, and when one dies the other delivers its share.

use crate::common;

use std::collections::HashSet;
use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Context, Result};
use common::receiver::{Receiver, Script};
use common::{ADMIN, Spawned};
use dropwire_funnel::conformance::PgServer;
use serde_json::{Value, json};

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    bearer: &str,
    body: Value,
) -> Result<Value> {
    let resp = http
        .request(method, url)
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    Ok(resp.json().await.unwrap_or(Value::Null))
}

/// A drop on `base` and `n` viewers on its waitlist: `n` `waitlist.joined` messages.
async fn joins(http: &reqwest::Client, base: &str, drop: &str, n: usize) -> Result<()> {
    let spec = common::drop_spec(drop, 5, 1, common::far_script());
    call(
        http,
        reqwest::Method::POST,
        format!("{base}/api/v1/drops"),
        ADMIN,
        spec,
    )
    .await?;
    for i in 0..n {
        let minted = call(
            http,
            reqwest::Method::POST,
            format!("{base}/api/v1/viewers"),
            ADMIN,
            json!({"handle": format!("{drop}-{i}")}),
        )
        .await?;
        let token = minted["token"].as_str().context("token")?;
        call(
            http,
            reqwest::Method::POST,
            format!("{base}/api/v1/drops/{drop}/waitlist"),
            token,
            json!({}),
        )
        .await?;
    }
    Ok(())
}

fn hub_args(extra: &[OsString]) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--webhook-allow-private",
        "true",
        "--webhook-retry-schedule",
        "0,1,1,1,1,1,1,1",
        "--webhook-timeout-s",
        "2",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.extend(extra.iter().cloned());
    args
}

fn spawn(args: &[OsString]) -> Result<Spawned> {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    Spawned::serve(&args)
}

fn ids(receiver: &Receiver, path: &str) -> HashSet<String> {
    receiver
        .log(path)
        .iter()
        .map(|r| r.id().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_delivery_loses_no_message() -> Result<()> {
    let _heavy = common::heavy().await;
    let receiver = Receiver::start().await;
    receiver.script(
        "slow",
        Script {
            then: 200,
            delay: Duration::from_millis(300),
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir()?;
    let args = hub_args(&["--data-dir".into(), dir.path().into()]);
    let http = reqwest::Client::new();
    let mut hub = spawn(&args)?;
    call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/v1/webhooks", hub.base),
        ADMIN,
        json!({"url": receiver.url("slow"), "events": ["waitlist.joined"]}),
    )
    .await?;
    joins(&http, &hub.base, "crash-hooks", 30).await?;
    common::eventually("some deliveries are under way", || {
        let n = receiver.log("slow").len();
        async move { Ok(n >= 3) }
    })
    .await?;
    hub.kill9()?;
    let before = ids(&receiver, "slow");
    assert!(
        before.len() < 30,
        "killed mid-delivery ({} of 30 delivered)",
        before.len()
    );

    let hub = spawn(&args)?;
    let endpoints = call(
        &http,
        reqwest::Method::GET,
        format!("{}/api/v1/webhooks", hub.base),
        ADMIN,
        Value::Null,
    )
    .await?;
    let id = endpoints["endpoints"][0]["id"]
        .as_str()
        .context("endpoint")?
        .to_owned();
    let msgs = call(
        &http,
        reqwest::Method::GET,
        format!("{}/api/v1/webhooks/{id}/deliveries?limit=100", hub.base),
        ADMIN,
        Value::Null,
    )
    .await?;
    let expected: HashSet<String> = msgs["deliveries"]
        .as_array()
        .context("deliveries")?
        .iter()
        .filter_map(|d| d["msg_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        expected.len(),
        30,
        "every message is in the outbox after the crash"
    );
    common::eventually("every message delivered after the restart", || {
        let got = ids(&receiver, "slow");
        let done = expected.is_subset(&got);
        async move { Ok(done) }
    })
    .await?;
    assert_eq!(
        ids(&receiver, "slow"),
        expected,
        "no other ids: a retry keeps its id"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_send_each_message_once_and_a_dead_nodes_share_is_taken_over() -> Result<()> {
    let _heavy = common::heavy().await;
    let pg = PgServer::start();
    let ledger = pg.create_database("hooks");
    let receiver = Receiver::start().await;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let node = |dir: &tempfile::TempDir| {
        hub_args(&[
            "--data-dir".into(),
            dir.path().into(),
            "--ledger".into(),
            ledger.clone().into(),
        ])
    };
    let http = reqwest::Client::new();
    let mut a = spawn(&node(&dir_a))?;
    let b = spawn(&node(&dir_b))?;
    call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/v1/webhooks", a.base),
        ADMIN,
        json!({"url": receiver.url("fast"), "events": ["waitlist.joined"]}),
    )
    .await?;
    let (ra, rb) = tokio::join!(
        joins(&http, &a.base, "node-a", 25),
        joins(&http, &b.base, "node-b", 25)
    );
    ra?;
    rb?;
    common::eventually("50 messages delivered", || {
        let n = ids(&receiver, "fast").len();
        async move { Ok(n == 50) }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.log("fast").len(),
        50,
        "each message sent once, by one node"
    );

    // Node A dies with deliveries of its own under way; node B delivers them.
    receiver.script(
        "slow",
        Script {
            then: 200,
            delay: Duration::from_millis(500),
            ..Default::default()
        },
    );
    call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/v1/webhooks", a.base),
        ADMIN,
        json!({"url": receiver.url("slow"), "events": ["waitlist.joined"]}),
    )
    .await?;
    joins(&http, &a.base, "node-a-again", 20).await?;
    common::eventually("deliveries under way", || {
        let n = receiver.log("slow").len();
        async move { Ok(n >= 2) }
    })
    .await?;
    a.kill9()?;
    common::eventually("node B delivers the rest", || {
        let n = ids(&receiver, "slow").len();
        async move { Ok(n == 20) }
    })
    .await?;
    drop(b);
    Ok(())
}
