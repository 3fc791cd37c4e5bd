//! The ledger after a `kill -9` of the real hub mid claim storm: once the restarted hub has
//! reconciled, the ledger holds exactly one `claim.granted` fact per claim the store holds,
//! every acknowledged claim among them — on the embedded store and on Redis.

use crate::common;

use std::collections::HashSet;
use std::ffi::OsString;

use anyhow::{Context, Result};
use common::{ADMIN, Spawned, Viewer};
use futures_util::future::join_all;
use serde_json::{Value, json};

const STOCK: u64 = 120;
const VIEWERS: usize = 250;

async fn api(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> Result<Value> {
    let resp = http
        .request(method, url)
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    Ok(resp.json().await?)
}

/// Every `claim.granted` fact of `drop` in the ledger, by id and by code.
async fn granted_facts(
    http: &reqwest::Client,
    base: &str,
    drop: &str,
) -> Result<(Vec<String>, Vec<String>)> {
    let (mut ids, mut codes) = (Vec::new(), Vec::new());
    let mut after = 0;
    loop {
        let url =
            format!("{base}/api/v1/ledger/facts?drop={drop}&kind=claim.granted&after={after}");
        let page = api(http, reqwest::Method::GET, url, Value::Null).await?;
        let facts = page["facts"].as_array().context("facts")?;
        for f in facts {
            ids.push(f["id"].as_str().context("id")?.to_owned());
            codes.push(f["detail"]["code"].as_str().context("code")?.to_owned());
        }
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => return Ok((ids, codes)),
        }
    }
}

/// Starts the hub with `args`, storms it, kills it, restarts it, and checks the ledger.
async fn storm_kill_and_reconcile(args: Vec<OsString>) -> Result<()> {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    let http = reqwest::Client::new();
    let mut hub = Spawned::serve(&args)?;
    let spec = common::drop_spec("ledger-crash", STOCK as u32, 1, common::far_script());
    let created = api(
        &http,
        reqwest::Method::POST,
        format!("{}/api/v1/drops", hub.base),
        spec,
    )
    .await?;
    let id = created["id"].as_str().context("id")?.to_owned();
    let mut viewers = Vec::new();
    for i in 0..VIEWERS {
        let minted = api(
            &http,
            reqwest::Method::POST,
            format!("{}/api/v1/viewers", hub.base),
            json!({"handle": format!("v{i}")}),
        )
        .await?;
        let mut v = Viewer::open(&hub.ws_base(), &id).await?;
        v.send(json!({"type": "hello", "token": minted["token"]}))
            .await?;
        v.next_of("snapshot").await?;
        viewers.push(v);
    }
    for (path, body) in [("start", json!({})), ("fire", json!({"cue": 1}))] {
        api(
            &http,
            reqwest::Method::POST,
            format!("{}/api/v1/drops/{id}/{path}", hub.base),
            body,
        )
        .await?;
    }

    // Everyone claims; the hub dies once the first answers are out.
    let (told_tx, mut told_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let storm = viewers.into_iter().enumerate().map(|(i, mut v)| {
        let told = told_tx.clone();
        async move {
            if let Ok(r) = v.claim("mug", &format!("r{i}")).await
                && let Some(code) = r["code"].as_str()
            {
                let _ = told.send(code.to_owned());
            }
        }
    });
    let storm = tokio::spawn(join_all(storm));
    drop(told_tx);
    let mut told = HashSet::new();
    while told.len() < 15 {
        told.insert(told_rx.recv().await.context("no claims were granted")?);
    }
    hub.kill9()?;
    storm.await?;
    while let Ok(code) = told_rx.try_recv() {
        told.insert(code);
    }

    let hub = Spawned::serve(&args)?;
    let claims = api(
        &http,
        reqwest::Method::GET,
        format!("{}/api/v1/drops/{id}/claims", hub.base),
        Value::Null,
    )
    .await?;
    let stored: HashSet<String> = claims["claims"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect();
    assert!(
        told.is_subset(&stored),
        "acknowledged claims lost in the store"
    );
    // Reconciliation runs at start: wait for the ledger to agree with the store.
    let base = hub.base.clone();
    common::eventually("the ledger holds every stored claim", || {
        let (http, base, id, stored) = (&http, &base, &id, &stored);
        async move {
            let (_, codes) = granted_facts(http, base, id).await?;
            Ok(codes.iter().cloned().collect::<HashSet<_>>() == *stored)
        }
    })
    .await?;
    let (ids, codes) = granted_facts(&http, &hub.base, &id).await?;
    assert_eq!(codes.len(), stored.len(), "one fact per claim, none twice");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    assert!(
        told.iter().all(|c| codes.contains(c)),
        "every acknowledged claim is in the ledger"
    );
    assert!(stored.len() as u64 <= STOCK);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_storm_leaves_the_ledger_exact_on_the_embedded_store() -> Result<()> {
    let _heavy = common::heavy().await;
    let dir = tempfile::tempdir()?;
    storm_kill_and_reconcile(vec!["--data-dir".into(), dir.path().into()]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_storm_leaves_the_ledger_exact_on_redis() -> Result<()> {
    let _heavy = common::heavy().await;
    let redis = dropwire_store::testing::RedisServer::start();
    let dir = tempfile::tempdir()?;
    storm_kill_and_reconcile(vec![
        "--data-dir".into(),
        dir.path().into(),
        "--redis".into(),
        redis.url().into(),
    ])
    .await
}
