//! The KPI reference test: a seeded synthetic history (60 drops of three kinds, 20,000
//! viewers, waitlists, attendance, claims, redemptions and coupon orders at known times)
//! imported through the API, and every KPI checked against an independent computation here,
//! straight from the facts. Also: the import's all-or-nothing rule and line-numbered errors,
//! CSV answers, and unique viewers that survive a restart.

use crate::common;

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result};
use common::{ADMIN, TestServer};
use dropwire_core::{Fact, FactKind};
use dropwire_funnel::conformance::history::{HistorySpec, history};
use serde_json::{Value, json};

const DAY: u64 = 86_400_000;
/// 2024-01-01: every window of the history has closed by the time the test runs.
const T0: u64 = 1_704_067_200_000;

fn spec() -> HistorySpec {
    HistorySpec {
        seed: 42,
        drops: 60,
        viewers: 20_000,
        attend_per_drop: 800,
        waitlist_per_drop: 200,
        claims_per_drop: 60,
        t0_ms: T0,
    }
}

/// The KPIs of one drop, computed here from the facts alone (docs/metrics.md).
#[derive(Debug, Default, Clone)]
struct Expected {
    kind: String,
    starts: u64,
    viewers: u64,
    waitlist: u64,
    waitlist_claimers: u64,
    claimers: u64,
    claims: u64,
    redeemed: u64,
    redeemed_48h: u64,
    coupon_uses: u64,
    re_engaged: u64,
    revenue: u64,
    buyers: u64,
    repeaters: u64,
}

struct Purchase {
    viewer: String,
    drop: String,
    coupon: bool,
    at: u64,
    amount: u64,
}

fn expected(facts: &[Fact]) -> (BTreeMap<String, Expected>, Vec<Purchase>) {
    let mut drops: BTreeMap<String, Expected> = BTreeMap::new();
    let mut attended: HashMap<String, HashSet<String>> = HashMap::new();
    let mut waitlisted: HashMap<String, HashSet<String>> = HashMap::new();
    let mut claimed: HashMap<String, HashSet<String>> = HashMap::new();
    let mut granted: HashMap<String, u64> = HashMap::new();
    let mut first_buy: HashMap<(String, String), u64> = HashMap::new();
    let mut purchases = Vec::new();
    for f in facts {
        let drop = f.drop_id.clone().unwrap_or_default();
        let viewer = f.viewer_id.clone().unwrap_or_default();
        let e = drops.entry(drop.clone()).or_default();
        match f.kind {
            FactKind::DropScheduled => e.kind = f.detail["kind"].as_str().unwrap_or("drop").into(),
            FactKind::DropLive => e.starts = f.at_ms,
            FactKind::ViewerAttended => {
                attended.entry(drop).or_default().insert(viewer);
            }
            FactKind::WaitlistJoined => {
                waitlisted.entry(drop).or_default().insert(viewer);
            }
            FactKind::ClaimGranted => {
                claimed.entry(drop).or_default().insert(viewer);
                e.claims += 1;
                granted.insert(f.detail["code"].as_str().unwrap_or("").into(), f.at_ms);
            }
            FactKind::ClaimRedeemed => {
                let amount = f.detail["amount_cents"].as_u64().unwrap_or(0);
                e.redeemed += 1;
                e.revenue += amount;
                let g = granted[f.detail["code"].as_str().unwrap_or("")];
                if f.at_ms - g <= 2 * DAY {
                    e.redeemed_48h += 1;
                }
                let first = first_buy
                    .entry((drop.clone(), viewer.clone()))
                    .or_insert(f.at_ms);
                *first = (*first).min(f.at_ms);
                purchases.push(Purchase {
                    viewer,
                    drop,
                    coupon: false,
                    at: f.at_ms,
                    amount,
                });
            }
            FactKind::CouponRedeemed => {
                e.coupon_uses += 1;
                let amount = f.detail["amount_cents"].as_u64().unwrap_or(0);
                purchases.push(Purchase {
                    viewer,
                    drop,
                    coupon: true,
                    at: f.at_ms,
                    amount,
                });
            }
            _ => {}
        }
    }
    let empty = HashSet::new();
    // Each viewer's first attended drop time, for re-engagement.
    let mut first_seen: HashMap<&String, u64> = HashMap::new();
    for (drop, viewers) in &attended {
        for v in viewers {
            let s = drops[drop].starts;
            let f = first_seen.entry(v).or_insert(s);
            *f = (*f).min(s);
        }
    }
    for (id, e) in drops.iter_mut() {
        let a = attended.get(id).unwrap_or(&empty);
        let w = waitlisted.get(id).unwrap_or(&empty);
        let c = claimed.get(id).unwrap_or(&empty);
        e.viewers = a.len() as u64;
        e.waitlist = w.len() as u64;
        e.claimers = c.len() as u64;
        e.waitlist_claimers = w.intersection(c).count() as u64;
        e.re_engaged = a.iter().filter(|v| first_seen[v] < e.starts).count() as u64;
    }
    for ((drop, viewer), first) in &first_buy {
        let e = drops.get_mut(drop).expect("drop");
        e.buyers += 1;
        let again = purchases.iter().any(|p| {
            p.viewer == *viewer
                && (p.coupon || p.drop != *drop)
                && p.at > *first
                && p.at <= first + 90 * DAY
        });
        if again {
            e.repeaters += 1;
        }
    }
    (drops, purchases)
}

fn ratio(n: u64, d: u64) -> Value {
    if d == 0 {
        Value::Null
    } else {
        json!(n as f64 / d as f64)
    }
}

fn close(got: &Value, want: &Value, what: &str) {
    match (got.as_f64(), want.as_f64()) {
        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{what}: got {g}, want {w}"),
        _ => assert_eq!(got, want, "{what}"),
    }
}

fn check(got: &Value, e: &Expected, what: &str) {
    let counts = [
        ("unique_viewers", e.viewers),
        ("waitlist", e.waitlist),
        ("waitlist_claimers", e.waitlist_claimers),
        ("claimers", e.claimers),
        ("claims", e.claims),
        ("redeemed", e.redeemed),
        ("redeemed_48h", e.redeemed_48h),
        ("coupon_uses", e.coupon_uses),
        ("re_engaged", e.re_engaged),
        ("revenue_cents", e.revenue),
        ("buyers", e.buyers),
        ("repeat_buyers_90d", e.repeaters),
    ];
    for (field, want) in counts {
        assert_eq!(got[field].as_u64(), Some(want), "{what}: {field} in {got}");
    }
    close(
        &got["intent_to_buy"],
        &ratio(e.waitlist_claimers, e.waitlist),
        &format!("{what} intent_to_buy"),
    );
    close(
        &got["claim_rate"],
        &ratio(e.claimers, e.viewers),
        &format!("{what} claim_rate"),
    );
    close(
        &got["conversion_48h"],
        &ratio(e.redeemed_48h, e.claims),
        &format!("{what} conversion_48h"),
    );
    close(
        &got["re_engagement"],
        &ratio(e.re_engaged, e.viewers),
        &format!("{what} re_engagement"),
    );
    close(
        &got["repeat_90d"],
        &ratio(e.repeaters, e.buyers),
        &format!("{what} repeat_90d"),
    );
}

async fn import(server: &TestServer, facts: &[Fact]) -> Result<(u16, Value)> {
    let body: String = facts
        .iter()
        .map(|f| serde_json::to_string(f).map(|l| l + "\n"))
        .collect::<Result<_, _>>()?;
    let resp = server
        .http
        .post(format!("{}/api/v1/ledger/import", server.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.json().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kpi_of_a_synthetic_history_matches_an_independent_computation() -> Result<()> {
    let server = TestServer::start().await?;
    let facts = history(&spec());
    // Newest first: re-engagement must come out right whatever order the facts arrive in.
    for chunk in facts.chunks(25_000).rev() {
        let (status, answer) = import(&server, chunk).await?;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["recorded"].as_u64(), Some(chunk.len() as u64));
    }
    let (status, again) = import(&server, &facts[..1000]).await?;
    assert_eq!(
        (
            status,
            again["recorded"].clone(),
            again["duplicates"].clone()
        ),
        (200, json!(0), json!(1000)),
        "idempotent by id"
    );
    let (want, purchases) = expected(&facts);
    assert_eq!(want.len(), 60);
    // The history exercises every KPI: none is trivially 0 or 1 over the drops.
    let some = |f: &dyn Fn(&Expected) -> (u64, u64)| {
        want.values().any(|e| {
            let (n, d) = f(e);
            n > 0 && n < d
        })
    };
    assert!(some(&|e| (e.waitlist_claimers, e.waitlist)));
    assert!(some(&|e| (e.redeemed_48h, e.claims)));
    assert!(some(&|e| (e.re_engaged, e.viewers)));
    assert!(some(&|e| (e.repeaters, e.buyers)));
    assert!(
        want.values()
            .all(|e| e.coupon_uses > 0 && e.claimers < e.claims + 1)
    );

    // Every drop, 20 at a time side by side.
    let ids: Vec<&String> = want.keys().collect();
    for group in ids.chunks(20) {
        let list: Vec<&str> = group.iter().map(|s| s.as_str()).collect();
        let (status, compared) = server
            .get(&format!(
                "/api/v1/analytics/compare?drops={}",
                list.join(",")
            ))
            .await?;
        assert_eq!(status, 200, "{compared}");
        for (got, id) in compared["drops"]
            .as_array()
            .context("drops")?
            .iter()
            .zip(group)
        {
            assert_eq!(got["drop_id"], id.as_str());
            check(got, &want[*id], id);
            assert_eq!(got["kind"], want[*id].kind.as_str());
            assert_eq!(got["repeat_90d_complete"], true);
        }
        let first = &compared["drops"][0];
        let second = &compared["drops"][1];
        let diff = &compared["differences"][0];
        close(
            &diff["repeat_90d"],
            &json!(
                second["repeat_90d"].as_f64().unwrap_or(0.0)
                    - first["repeat_90d"].as_f64().unwrap_or(0.0)
            ),
            "difference",
        );
    }

    // One drop: its funnel and 90-day repeat curve.
    let one = ids[10];
    let (_, view) = server
        .get(&format!("/api/v1/analytics/drops/{one}"))
        .await?;
    check(&view, &want[one], one);
    assert_eq!(
        view["funnel"],
        json!({"viewers": want[one].viewers, "waitlist": want[one].waitlist, "claims": want[one].claims, "redemptions": want[one].redeemed})
    );
    let curve = view["repeat_curve"].as_array().context("curve")?;
    assert_eq!(curve.len(), 91);
    close(
        &curve[90]["share"],
        &ratio(want[one].repeaters, want[one].buyers),
        "the curve ends at the 90-day figure",
    );
    assert!(
        curve
            .windows(2)
            .all(|w| w[0]["share"].as_f64() <= w[1]["share"].as_f64()),
        "a curve only rises"
    );

    // The summary by kind and by month: pooled counts, ratios of the sums.
    for by in ["kind", "month"] {
        let (_, summary) = server
            .get(&format!("/api/v1/analytics/summary?by={by}"))
            .await?;
        let mut pooled: BTreeMap<String, (u64, Expected)> = BTreeMap::new();
        for e in want.values() {
            let key = if by == "kind" {
                e.kind.clone()
            } else {
                month(e.starts)
            };
            let (n, p) = pooled.entry(key).or_default();
            *n += 1;
            for (acc, add) in [
                (&mut p.viewers, e.viewers),
                (&mut p.waitlist, e.waitlist),
                (&mut p.waitlist_claimers, e.waitlist_claimers),
                (&mut p.claimers, e.claimers),
                (&mut p.claims, e.claims),
                (&mut p.redeemed, e.redeemed),
                (&mut p.redeemed_48h, e.redeemed_48h),
                (&mut p.coupon_uses, e.coupon_uses),
                (&mut p.re_engaged, e.re_engaged),
                (&mut p.revenue, e.revenue),
                (&mut p.buyers, e.buyers),
                (&mut p.repeaters, e.repeaters),
            ] {
                *acc += add;
            }
        }
        let groups = summary["groups"].as_array().context("groups")?;
        assert_eq!(groups.len(), pooled.len(), "{by}");
        for g in groups {
            let key = g["key"].as_str().context("key")?;
            let (n, p) = &pooled[key];
            assert_eq!(g["drops"].as_u64(), Some(*n));
            check(g, p, &format!("{by}={key}"));
        }
    }
    // A time range: the first 30 days hold drops 0–9.
    let (_, ranged) = server
        .get(&format!(
            "/api/v1/analytics/summary?by=kind&from={T0}&to={}",
            T0 + 30 * DAY
        ))
        .await?;
    let counted: u64 = ranged["groups"]
        .as_array()
        .context("groups")?
        .iter()
        .filter_map(|g| g["drops"].as_u64())
        .sum();
    assert_eq!(counted, 10);

    // LTV by the kind of the buyer's first purchase, over 30, 90 and 365 days.
    let (_, summary) = server.get("/api/v1/analytics/summary").await?;
    let kind_of: HashMap<&str, &str> = want
        .iter()
        .map(|(id, e)| (id.as_str(), e.kind.as_str()))
        .collect();
    let mut first: HashMap<&str, (u64, &str)> = HashMap::new();
    for p in &purchases {
        let k = kind_of[p.drop.as_str()];
        let f = first.entry(&p.viewer).or_insert((p.at, k));
        if p.at < f.0 || (p.at == f.0 && k < f.1) {
            *f = (p.at, k);
        }
    }
    let now = server.state.clock.now_ms();
    for ltv in summary["ltv_by_kind"].as_array().context("ltv")? {
        let kind = ltv["kind"].as_str().context("kind")?;
        let cohort: Vec<(&str, u64)> = first
            .iter()
            .filter(|(_, (_, k))| *k == kind)
            .map(|(v, (at, _))| (*v, *at))
            .collect();
        assert_eq!(ltv["buyers"].as_u64(), Some(cohort.len() as u64), "{kind}");
        for w in ltv["windows"].as_array().context("windows")? {
            let days = w["days"].as_u64().context("days")?;
            let closed: Vec<&(&str, u64)> = cohort
                .iter()
                .filter(|(_, at)| at + days * DAY <= now)
                .collect();
            let revenue: u64 = closed
                .iter()
                .map(|(v, at)| {
                    purchases
                        .iter()
                        .filter(|p| p.viewer == *v && p.at <= at + days * DAY)
                        .map(|p| p.amount)
                        .sum::<u64>()
                })
                .sum();
            assert_eq!(
                (w["buyers"].as_u64(), w["revenue_cents"].as_u64()),
                (Some(closed.len() as u64), Some(revenue)),
                "{kind} {days} d"
            );
            close(
                &w["ltv_cents"],
                &ratio(revenue, closed.len() as u64),
                &format!("{kind} {days} d"),
            );
        }
    }
    assert_eq!(summary["ltv_by_kind"].as_array().map(Vec::len), Some(3));

    // CSV: a header and a row per group.
    let csv = server
        .http
        .get(format!("{}/api/v1/analytics/summary?by=kind", server.base))
        .bearer_auth(ADMIN)
        .header("accept", "text/csv")
        .send()
        .await?;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await?;
    assert!(text.starts_with("group,drops,unique_viewers,"), "{text}");
    assert_eq!(text.lines().count(), 4);
    server.stop().await
}

fn month(ms: u64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).expect("time");
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_is_all_or_nothing_and_names_the_bad_lines() -> Result<()> {
    let server = TestServer::start().await?;
    let good = json!({"id": "x1", "kind": "viewer.attended", "drop_id": "old-shop", "viewer_id": "v1", "at_ms": T0});
    let body = format!(
        "{good}\n{}\nnot json\n{}\n",
        json!({"id": "x2", "kind": "claim.redeemed", "drop_id": "old-shop", "viewer_id": "v1", "at_ms": T0, "detail": {"code": "A"}}),
        json!({"id": "x3", "kind": "claim.stolen", "drop_id": "old-shop", "at_ms": T0})
    );
    let resp = server
        .http
        .post(format!("{}/api/v1/ledger/import", server.base))
        .bearer_auth(ADMIN)
        .body(body)
        .send()
        .await?;
    assert_eq!(resp.status(), 422);
    let err: Value = resp.json().await?;
    assert_eq!(err["error"]["code"], "bad_lines");
    let lines: Vec<u64> = err["error"]["lines"]
        .as_array()
        .context("lines")?
        .iter()
        .filter_map(|l| l["line"].as_u64())
        .collect();
    assert_eq!(lines, [2, 3, 4]);
    let (_, facts) = server.get("/api/v1/ledger/facts?drop=old-shop").await?;
    assert_eq!(facts["facts"], json!([]), "nothing from a rejected batch");
    let resp = server
        .http
        .post(format!("{}/api/v1/ledger/import", server.base))
        .bearer_auth(ADMIN)
        .body(format!("{good}\n"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let resp = server
        .http
        .post(format!("{}/api/v1/ledger/import", server.base))
        .bearer_auth(ADMIN)
        .body("")
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    let resp = server
        .http
        .post(format!("{}/api/v1/ledger/import", server.base))
        .body(format!("{good}\n"))
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_viewers_survive_a_restart_and_count_a_returning_visitor_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = TestServer::on_dir(dir.path()).await?;
    let drop = server
        .create(common::drop_spec("uniques", 5, 1, common::far_script()))
        .await?;
    let hello = |visitor: &str| json!({"type": "hello", "visitor": visitor});
    for visitor in ["visitor-aaaa", "visitor-aaaa", "visitor-bbbb"] {
        let mut v = server.connect(&drop).await?;
        v.send(hello(visitor)).await?;
        v.next_of("snapshot").await?;
    }
    let mut anon = server.connect(&drop).await?;
    anon.send(json!({"type": "hello", "visitor": "bad id!"}))
        .await?;
    anon.next_of("snapshot").await?;
    let _ana = server.watch_as(&drop, "ana").await?;
    common::eventually("three unique viewers", || async {
        Ok(server.get(&format!("/api/v1/drops/{drop}/stats")).await?.1["viewers"]["unique"] == 3)
    })
    .await?;
    server
        .state
        .funnel
        .as_ref()
        .context("ledger")?
        .feed
        .flush(common::PATIENCE)
        .await;
    server.stop().await?;
    let server = TestServer::on_dir(dir.path()).await?;
    let (_, stats) = server.get(&format!("/api/v1/drops/{drop}/stats")).await?;
    assert_eq!(stats["viewers"]["unique"], 3, "after the restart: {stats}");
    let mut back = server.connect(&drop).await?;
    back.send(hello("visitor-aaaa")).await?;
    back.next_of("snapshot").await?;
    server
        .state
        .funnel
        .as_ref()
        .context("ledger")?
        .feed
        .flush(common::PATIENCE)
        .await;
    let (_, stats) = server.get(&format!("/api/v1/drops/{drop}/stats")).await?;
    assert_eq!(
        stats["viewers"]["unique"], 3,
        "a returning visitor counts once"
    );
    server.stop().await
}
