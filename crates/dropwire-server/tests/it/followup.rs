//! After the live, against a real HTTP receiver: the follow-up confirmation of a claim and
//! its coupon, redeemed once; the nurture schedule, offered to consenting buyers, skipped
//! (and recorded) for the others and for erased ones.

use crate::common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::ADMIN;
use common::hooks::{endpoint, hub, join_waitlist, until};
use common::receiver::Receiver;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_brings_its_confirmation_and_a_coupon_redeemed_once() -> Result<()> {
    let receiver = Receiver::start().await;
    let server = hub(&[0, 1]).await?;
    endpoint(
        &server,
        &receiver.url("crm"),
        json!(["followup.confirmation", "coupon.redeemed"]),
    )
    .await?;
    let mut spec = common::drop_spec("follow-up", 5, 1, common::far_script());
    spec["follow_up"] = json!({
        "cross_sell": [{"name": "Matching saucer", "url": "https://shop.example/saucer", "price_cents": 1200}],
        "coupon": {"percent_off": 15}
    });
    let drop = server.create(spec).await?;
    let mut ana = server.watch_as(&drop, "ana").await?;
    server.start_and_reveal(&drop).await?;
    let granted = ana.claim("mug", "r1").await?;
    let coupon = granted["follow_up"]["coupon"].clone();
    assert_eq!(coupon["percent_off"], 15);
    assert_eq!(
        granted["follow_up"]["cross_sell"][0]["name"],
        "Matching saucer"
    );
    let code = coupon["code"].as_str().context("a coupon code")?.to_owned();
    assert_ne!(
        code,
        granted["code"].as_str().unwrap_or_default(),
        "not the claim's code"
    );
    let created = granted["hold_until_ms"].as_u64().unwrap_or(0) - 900_000;
    assert_eq!(
        coupon["expires_ms"].as_u64(),
        Some(created + 48 * 3_600_000),
        "48 h by default"
    );
    let again = ana.claim("mug", "r1").await?;
    assert_eq!(
        again["follow_up"], granted["follow_up"],
        "the same coupon for the same claim"
    );

    until("the confirmation", || !receiver.log("crm").is_empty()).await?;
    let confirmation = receiver.log("crm")[0].json();
    assert_eq!(confirmation["type"], "followup.confirmation");
    let detail = &confirmation["data"]["detail"];
    assert_eq!(
        (detail["code"].clone(), detail["coupon"]["code"].clone()),
        (granted["code"].clone(), json!(code))
    );
    assert_eq!(
        detail["cross_sell"][0]["url"],
        "https://shop.example/saucer"
    );

    let redeem = |c: String| {
        let server = &server;
        async move {
            server
                .post(
                    &format!("/api/v1/coupons/{c}/redeem"),
                    json!({"amount_cents": 2890}),
                )
                .await
        }
    };
    let (status, redeemed) = redeem(code.to_lowercase()).await?;
    assert_eq!(status, 200, "{redeemed}");
    assert_eq!(redeemed["amount_cents"], 2890);
    let (status, twice) = redeem(code.clone()).await?;
    assert_eq!(
        (status, twice["error"]["code"].as_str()),
        (409, Some("coupon_redeemed"))
    );
    let (status, unknown) = redeem("AAAA-BBBB-CCCC-DDDD".into()).await?;
    assert_eq!(
        (status, unknown["error"]["code"].as_str()),
        (404, Some("no_such_coupon"))
    );
    let (status, _) = server
        .post(&format!("/api/v1/coupons/{code}/redeem"), json!({}))
        .await?;
    assert_eq!(status, 400, "the amount is required");
    until("the redemption is announced", || {
        receiver
            .log("crm")
            .iter()
            .any(|r| r.event() == "coupon.redeemed")
    })
    .await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nurture_schedule_offers_to_consenting_buyers_and_records_the_skips() -> Result<()> {
    let receiver = Receiver::start().await;
    let server = hub(&[0, 1]).await?;
    endpoint(&server, &receiver.url("crm"), json!(["nurture.offer"])).await?;
    let steps = json!({"steps": [
        {"after_s": 1, "offer": "coupon", "detail": {"percent_off": 10}},
        {"after_s": 2, "offer": "subscription", "detail": {"plan": "monthly mug"}}
    ]});
    let resp = server
        .http
        .put(format!("{}/api/v1/nurture", server.base))
        .bearer_auth(ADMIN)
        .json(&steps)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let (_, got) = server.get("/api/v1/nurture").await?;
    assert_eq!(got, steps);
    let bad =
        json!({"steps": [{"after_s": 5, "offer": "coupon"}, {"after_s": 5, "offer": "coupon"}]});
    let resp = server
        .http
        .put(format!("{}/api/v1/nurture", server.base))
        .bearer_auth(ADMIN)
        .json(&bad)
        .send()
        .await?;
    assert_eq!(resp.status(), 422);

    let drop = server
        .create(common::drop_spec("nurture", 5, 1, common::far_script()))
        .await?;
    let fan = join_waitlist(
        &server,
        &drop,
        "fan",
        json!({"consent": {"marketing": true}, "contact": "fan@example.com"}),
    )
    .await?;
    let quiet = join_waitlist(&server, &drop, "quiet", json!({})).await?;
    let (mut fan_ws, _) = server.join(&drop, Some(&fan), None).await?;
    let (mut quiet_ws, _) = server.join(&drop, Some(&quiet), None).await?;
    server.start_and_reveal(&drop).await?;
    for ws in [&mut fan_ws, &mut quiet_ws] {
        let granted = ws.claim("mug", "r1").await?;
        let code = granted["code"].as_str().context("code")?;
        server
            .ok(&format!("/api/v1/claims/{code}/redeem"), json!({}))
            .await?;
    }
    until("both offers reach the consenting buyer", || {
        receiver.log("crm").len() == 2
    })
    .await?;
    let offers: Vec<String> = receiver
        .log("crm")
        .iter()
        .map(|r| {
            r.json()["data"]["detail"]["offer"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(offers, ["coupon", "subscription"]);
    common::eventually("the skips are recorded", || async {
        let (_, f) = server
            .get(&format!(
                "/api/v1/ledger/facts?drop={drop}&kind=nurture.skipped"
            ))
            .await?;
        Ok(f["facts"].as_array().is_some_and(|a| {
            a.len() == 2 && a.iter().all(|x| x["detail"]["reason"] == "no_consent")
        }))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.log("crm").len(), 2, "each step once");

    // A drop's own schedule instead of the maker's; a buyer erased before it falls due is skipped.
    let mut spec = common::drop_spec("nurture-own", 5, 1, common::far_script());
    spec["nurture"] = json!([{"after_s": 5, "offer": "early_access_pass", "detail": {}}]);
    let own = server.create(spec).await?;
    let gone = join_waitlist(
        &server,
        &own,
        "gone",
        json!({"consent": {"marketing": true}}),
    )
    .await?;
    let (mut gone_ws, welcome) = server.join(&own, Some(&gone), None).await?;
    server.start_and_reveal(&own).await?;
    let granted = gone_ws.claim("mug", "r1").await?;
    server
        .ok(
            &format!(
                "/api/v1/claims/{}/redeem",
                granted["code"].as_str().context("code")?
            ),
            json!({}),
        )
        .await?;
    let viewer = welcome["viewer_id"].as_str().context("viewer")?;
    let resp = server
        .http
        .delete(format!("{}/api/v1/viewers/{viewer}", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    common::eventually("the erased buyer's step is skipped", || async {
        let (_, f) = server
            .get(&format!(
                "/api/v1/ledger/facts?drop={own}&kind=nurture.skipped"
            ))
            .await?;
        Ok(f["facts"]
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["detail"]["reason"] == "erased"))
    })
    .await?;
    let (_, offers) = server
        .get(&format!(
            "/api/v1/ledger/facts?drop={own}&kind=nurture.offer"
        ))
        .await?;
    assert_eq!(
        offers["facts"],
        json!([]),
        "nothing offered to an erased viewer"
    );
    server.stop().await
}
