//! Co-ops: created once per id, their members kept in order (added once, up to a bound,
//! removed), renamed, deleted with their member list; and the co-op KPIs: each member's
//! figures side by side, and a total that sums the counts and recomputes the ratios.

use dropwire_core::{Fact, FactKind};
use serde_json::json;

use super::{T0, fresh};
use crate::Ledger;

const HOUR: u64 = 3_600_000;

pub async fn coops_are_kept_with_their_makers(ledger: &Ledger) {
    let id = fresh("coop");
    let (m1, m2, m3, m4) = (fresh("m1"), fresh("m2"), fresh("m3"), fresh("m4"));
    let made = ledger
        .create_coop(&id, "River studios", &[m1.clone(), m2.clone()], T0)
        .await
        .expect("create")
        .expect("new");
    assert_eq!(
        (made.id.as_str(), made.name.as_str(), made.created_ms),
        (id.as_str(), "River studios", T0)
    );
    assert_eq!(made.makers, [m1.clone(), m2.clone()]);
    assert!(
        ledger
            .create_coop(&id, "Again", &[], T0)
            .await
            .expect("create")
            .is_none(),
        "the id is taken"
    );
    let listed = ledger.coops().await.expect("list");
    assert_eq!(listed.iter().filter(|c| c.id == id).count(), 1);
    assert_eq!(listed.iter().find(|c| c.id == id), Some(&made));

    let renamed = ledger
        .rename_coop(&id, "River & hill studios")
        .await
        .expect("rename")
        .expect("there");
    assert_eq!(renamed.name, "River & hill studios");
    assert_eq!(renamed.makers, made.makers);
    assert_eq!(
        ledger
            .rename_coop(&fresh("none"), "x")
            .await
            .expect("rename"),
        None
    );

    // Added once, in order, up to the bound (3 here).
    let added = ledger
        .add_coop_maker(&id, &m3, 3, T0 + 10)
        .await
        .expect("add")
        .expect("there");
    assert_eq!(added.makers, [m1.clone(), m2.clone(), m3.clone()]);
    let again = ledger
        .add_coop_maker(&id, &m3, 3, T0 + 11)
        .await
        .expect("add");
    assert_eq!(again.map(|c| c.makers.len()), Some(3), "a member once");
    let full = ledger
        .add_coop_maker(&id, &m4, 3, T0 + 12)
        .await
        .expect("add")
        .expect("there");
    assert!(!full.makers.contains(&m4), "the co-op is full");
    assert_eq!(
        ledger
            .add_coop_maker(&fresh("none"), &m4, 3, T0)
            .await
            .expect("add"),
        None
    );

    assert_eq!(
        ledger.remove_coop_maker(&id, &m2).await.expect("remove"),
        Some(true)
    );
    assert_eq!(
        ledger.remove_coop_maker(&id, &m2).await.expect("remove"),
        Some(false)
    );
    assert_eq!(
        ledger
            .remove_coop_maker(&fresh("none"), &m2)
            .await
            .expect("remove"),
        None
    );
    let now = ledger.coop(&id).await.expect("read").expect("there");
    assert_eq!(now.makers, [m1.clone(), m3.clone()]);

    assert!(ledger.delete_coop(&id).await.expect("delete"));
    assert!(!ledger.delete_coop(&id).await.expect("delete"));
    assert_eq!(ledger.coop(&id).await.expect("read"), None);
    // The member list went with it: the id made again starts empty.
    let fresh_again = ledger
        .create_coop(&id, "New", &[], T0 + 20)
        .await
        .expect("create")
        .expect("free again");
    assert!(fresh_again.makers.is_empty());
}

fn fact(
    kind: FactKind,
    maker: &str,
    drop: &str,
    viewer: &str,
    at: u64,
    detail: serde_json::Value,
) -> Fact {
    let code = detail["code"].as_str().unwrap_or("").to_owned();
    Fact {
        id: format!("{}:{drop}:{viewer}:{code}", kind.as_str()),
        kind,
        maker: maker.into(),
        drop_id: Some(drop.into()),
        viewer_id: Some(viewer.into()),
        at_ms: at,
        detail,
    }
}

/// A drop of `maker`: everyone in `viewers` attends; each `(viewer, redeemed)` in `claims`
/// claims one item, redeemed for that amount that long after the grant (or never).
fn drop_facts(
    maker: &str,
    drop: &str,
    at: u64,
    viewers: &[&str],
    claims: &[(&str, Option<(u64, u64)>)],
) -> Vec<Fact> {
    let mut out: Vec<Fact> = viewers
        .iter()
        .map(|v| fact(FactKind::ViewerAttended, maker, drop, v, at, json!({})))
        .collect();
    for (i, (v, redeemed)) in claims.iter().enumerate() {
        let code = format!("{drop}-C{i}");
        let granted = at + 60_000;
        out.push(fact(
            FactKind::ClaimGranted,
            maker,
            drop,
            v,
            granted,
            json!({"code": code, "sku": "mug", "price_cents": 1000}),
        ));
        if let Some((after, cents)) = redeemed {
            out.push(fact(
                FactKind::ClaimRedeemed,
                maker,
                drop,
                v,
                granted + after,
                json!({"code": code, "amount_cents": cents}),
            ));
        }
    }
    out
}

pub async fn coop_kpis_sum_the_members_and_recompute_the_ratios(ledger: &Ledger) {
    let (a, b, idle) = (fresh("maker-a"), fresh("maker-b"), fresh("maker-idle"));
    let (a1, a2, b1) = (fresh("a1"), fresh("a2"), fresh("b1"));
    let mut facts = drop_facts(
        &a,
        &a1,
        T0,
        &["ana", "bo", "cy"],
        &[("ana", Some((HOUR, 1000))), ("bo", None)],
    );
    facts.extend(drop_facts(
        &a,
        &a2,
        T0 + 24 * HOUR,
        &["dee"],
        &[("dee", Some((HOUR, 500)))],
    ));
    // Redeemed 3 days after the grant: counted in the revenue, not within 48 h.
    facts.extend(drop_facts(
        &b,
        &b1,
        T0,
        &["eve", "fay"],
        &[("eve", Some((72 * HOUR, 2500)))],
    ));
    assert_eq!(
        ledger.record(&facts).await.expect("record"),
        facts.len() as u64
    );

    let now = T0 + 10 * 24 * HOUR;
    let makers = [a.clone(), b.clone(), idle.clone()];
    let k = ledger.coop_kpis("river", &makers, now).await.expect("kpis");
    assert_eq!(k.coop, "river");
    let names: Vec<&str> = k.makers.iter().map(|m| m.maker.as_str()).collect();
    assert_eq!(
        names,
        [a.as_str(), b.as_str(), idle.as_str()],
        "in the co-op's order"
    );

    let figures = |m: &crate::DropKpis| {
        (
            m.unique_viewers,
            m.claimers,
            m.claims,
            m.redeemed,
            m.redeemed_48h,
            m.revenue_cents,
            m.buyers,
        )
    };
    let (ka, kb, ki) = (&k.makers[0], &k.makers[1], &k.makers[2]);
    assert_eq!((ka.drops, figures(&ka.kpis)), (2, (4, 3, 3, 2, 2, 1500, 2)));
    assert_eq!(ka.kpis.claim_rate, Some(0.75));
    assert_eq!(ka.kpis.conversion_48h, Some(2.0 / 3.0));
    assert_eq!((kb.drops, figures(&kb.kpis)), (1, (2, 1, 1, 1, 0, 2500, 1)));
    assert_eq!(kb.kpis.claim_rate, Some(0.5));
    assert_eq!(kb.kpis.conversion_48h, Some(0.0));
    assert_eq!((ki.drops, figures(&ki.kpis)), (0, (0, 0, 0, 0, 0, 0, 0)));
    assert_eq!(ki.kpis.claim_rate, None, "no viewers: no rate");
    // The maker-level figures are the ones the maker's own KPIs pool to.
    assert_eq!(ledger.maker_kpis(&a, now).await.expect("maker"), *ka);

    // The total: sums of the counts, ratios of the sums (not the mean of the ratios, which
    // would be 0.625 and 1/3).
    assert_eq!(
        (k.total.drops, figures(&k.total.kpis)),
        (3, (6, 4, 4, 3, 2, 4000, 3))
    );
    assert_eq!(k.total.kpis.claim_rate, Some(4.0 / 6.0));
    assert_eq!(k.total.kpis.conversion_48h, Some(0.5));
    assert!(
        k.total.kpis.repeat_90d_complete
            == (ka.kpis.repeat_90d_complete && kb.kpis.repeat_90d_complete)
    );
}
