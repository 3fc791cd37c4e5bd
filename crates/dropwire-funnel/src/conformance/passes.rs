//! Passes: rules kept per maker; a pass earned once, by the fact that completes its rule
//! (attendance, claims or quest points of the rule's maker only); revoked by its maker; the
//! signing secret stored once.

use dropwire_core::{Fact, FactKind};
use serde_json::json;

use super::{T0, fresh};
use crate::{EarnedBy, Grants, Ledger, PassRuleSpec};

fn rule(id: &str, earned_by: EarnedBy, early: bool) -> PassRuleSpec {
    PassRuleSpec {
        id: Some(id.to_owned()),
        name: format!("Rule {id}"),
        earned_by,
        grants: Grants {
            early_access: early,
            per_viewer_limit: None,
        },
    }
}

fn claim(maker: &str, drop: &str, viewer: &str, code: &str) -> Fact {
    Fact {
        id: format!("claim.granted:{drop}:{code}"),
        kind: FactKind::ClaimGranted,
        maker: maker.to_owned(),
        drop_id: Some(drop.to_owned()),
        viewer_id: Some(viewer.to_owned()),
        at_ms: T0,
        detail: json!({"code": code}),
    }
}

pub async fn pass_rules_are_kept_per_maker_and_passes_earned_once(ledger: &Ledger) {
    let maker = fresh("maker");
    let other = fresh("other");
    let viewer = fresh("ana");
    let spec = rule("regular", EarnedBy::Attendance(2), true);
    assert_eq!(spec.validate(), Ok(()));
    let made = ledger
        .create_pass_rule(&maker, "regular", &spec, T0)
        .await
        .expect("create")
        .expect("new");
    assert_eq!(
        (made.earned_by, made.grants.early_access, made.created_ms),
        (EarnedBy::Attendance(2), true, T0)
    );
    assert!(
        ledger
            .create_pass_rule(&maker, "regular", &spec, T0)
            .await
            .expect("again")
            .is_none()
    );
    let mut claims = rule("buyer", EarnedBy::Claims(1), false);
    claims.grants.per_viewer_limit = Some(2);
    ledger
        .create_pass_rule(&maker, "buyer", &claims, T0 + 1)
        .await
        .expect("create")
        .expect("new");
    let mut points = rule("quester", EarnedBy::QuestPoints(30), false);
    points.grants.per_viewer_limit = Some(4);
    ledger
        .create_pass_rule(&maker, "quester", &points, T0 + 2)
        .await
        .expect("create")
        .expect("new");
    let ids: Vec<String> = ledger
        .pass_rules(&maker)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["regular", "buyer", "quester"]);
    assert!(ledger.pass_rules(&other).await.expect("other").is_empty());
    assert!(
        ledger
            .pass_rule(&other, "regular")
            .await
            .expect("get")
            .is_none()
    );

    // One attendance: no pass; another maker's attendance does not count.
    let d1 = fresh("d1");
    ledger
        .record(&[Fact::attended(&d1, &viewer, T0).by(&maker)])
        .await
        .expect("record");
    ledger
        .record(&[Fact::attended(&fresh("o"), &viewer, T0).by(&other)])
        .await
        .expect("record");
    assert!(
        ledger
            .passes_of(None, &viewer)
            .await
            .expect("read")
            .is_empty()
    );
    // The second drop earns it, once; recording again earns nothing more.
    let second = Fact::attended(&fresh("d2"), &viewer, T0 + 10).by(&maker);
    ledger
        .record(std::slice::from_ref(&second))
        .await
        .expect("record");
    ledger.record(&[second]).await.expect("again");
    ledger
        .record(&[Fact::attended(&fresh("d3"), &viewer, T0 + 20).by(&maker)])
        .await
        .expect("record");
    let passes = ledger.passes_of(Some(&maker), &viewer).await.expect("read");
    assert_eq!(passes.len(), 1, "{passes:?}");
    assert_eq!(
        (
            passes[0].rule.as_str(),
            passes[0].earned_ms,
            passes[0].revoked_ms
        ),
        ("regular", T0 + 10, None)
    );
    assert!(passes[0].id.starts_with("pass_"));
    assert!(
        ledger
            .passes_of(Some(&other), &viewer)
            .await
            .expect("o")
            .is_empty()
    );

    // A claim earns `buyer`; quest points add up to `quester` (20 + 10).
    ledger
        .record(&[claim(&maker, &d1, &viewer, "c1")])
        .await
        .expect("claim");
    for (quest, points) in [("q1", 20), ("q2", 5)] {
        ledger
            .record(&[
                Fact::quest_awarded(&d1, quest, "be_there", &viewer, points, T0 + 30).by(&maker),
            ])
            .await
            .expect("quest");
    }
    let rules = |v: Vec<crate::Pass>| {
        let mut r: Vec<String> = v.into_iter().map(|p| p.rule).collect();
        r.sort();
        r
    };
    assert_eq!(
        rules(ledger.passes_of(None, &viewer).await.expect("read")),
        ["buyer", "regular"]
    );
    ledger
        .record(&[Fact::quest_awarded(&d1, "q3", "be_there", &viewer, 5, T0 + 40).by(&maker)])
        .await
        .expect("quest");
    assert_eq!(
        rules(ledger.passes_of(None, &viewer).await.expect("read")),
        ["buyer", "quester", "regular"]
    );

    // `regular` grants early access; `buyer` and `quester` do not.
    let held = ledger.held_grants(&maker, &viewer).await.expect("grants");
    assert_eq!((held.early_access, held.per_viewer_limit), (true, Some(4)));
    let none = ledger.held_grants(&other, &viewer).await.expect("grants");
    assert_eq!(none, crate::Grants::default());

    // Revocation: by the maker only; the first time stays.
    let pass = passes[0].id.clone();
    assert!(
        ledger
            .revoke_pass(&other, &pass, T0 + 50)
            .await
            .expect("other")
            .is_none()
    );
    assert_eq!(
        ledger
            .pass(&pass)
            .await
            .expect("get")
            .expect("there")
            .revoked_ms,
        None
    );
    let revoked = ledger
        .revoke_pass(&maker, &pass, T0 + 50)
        .await
        .expect("revoke")
        .expect("the maker's");
    assert_eq!(revoked.revoked_ms, Some(T0 + 50));
    let again = ledger
        .revoke_pass(&maker, &pass, T0 + 60)
        .await
        .expect("revoke")
        .expect("the maker's");
    assert_eq!(again.revoked_ms, Some(T0 + 50));
    // `regular` is revoked: `buyer` and `quester` still raise the limit.
    let held = ledger.held_grants(&maker, &viewer).await.expect("revoked");
    assert_eq!((held.early_access, held.per_viewer_limit), (false, Some(4)));

    // Deleting a rule keeps the passes it earned.
    assert!(
        ledger
            .delete_pass_rule(&maker, "buyer")
            .await
            .expect("delete")
    );
    assert!(
        !ledger
            .delete_pass_rule(&maker, "buyer")
            .await
            .expect("gone")
    );
    assert_eq!(
        ledger.passes_of(None, &viewer).await.expect("read").len(),
        3
    );

    // The export shows them; erasure gives them the tombstone.
    let export = ledger.export_viewer(&viewer).await.expect("export");
    assert_eq!(export.passes.len(), 3);
    let tombstone = fresh("erased");
    ledger
        .erase_viewer(&viewer, &tombstone, T0 + 70)
        .await
        .expect("erase");
    assert!(
        ledger
            .passes_of(None, &viewer)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(
        ledger
            .passes_of(None, &tombstone)
            .await
            .expect("read")
            .len(),
        3
    );
}

pub async fn the_signing_secret_is_stored_once(ledger: &Ledger) {
    let purpose = fresh("passes");
    let first = ledger
        .signing_secret(&purpose, ("k1", "s1"), T0)
        .await
        .expect("first");
    let second = ledger
        .signing_secret(&purpose, ("k2", "s2"), T0 + 1)
        .await
        .expect("second");
    assert_eq!(first, ("k1".to_owned(), "s1".to_owned()));
    assert_eq!(second, first);
}

pub fn rules_are_validated() {
    let mut spec = rule("ok", EarnedBy::Claims(0), false);
    assert_eq!(
        spec.validate().map_err(|e| e.0),
        Err("earned_by.claims".into())
    );
    spec.earned_by = EarnedBy::Claims(crate::MAX_COUNT + 1);
    assert_eq!(
        spec.validate().map_err(|e| e.0),
        Err("earned_by.claims".into())
    );
    spec.earned_by = EarnedBy::Claims(3);
    spec.grants.per_viewer_limit = Some(0);
    assert_eq!(
        spec.validate().map_err(|e| e.0),
        Err("grants.per_viewer_limit".into())
    );
    spec.grants.per_viewer_limit = Some(5);
    spec.id = Some("Bad Id".into());
    assert_eq!(spec.validate().map_err(|e| e.0), Err("id".into()));
    spec.id = None;
    spec.name = " ".into();
    assert_eq!(spec.validate().map_err(|e| e.0), Err("name".into()));
    spec.name = "Fine".into();
    assert_eq!(spec.validate(), Ok(()));
    let parsed: PassRuleSpec = serde_json::from_value(
        json!({"name": "x", "earned_by": {"quest_points": 50}, "grants": {"per_viewer_limit": 4}}),
    )
    .expect("parse");
    assert_eq!(parsed.earned_by, EarnedBy::QuestPoints(50));
    assert!(
        serde_json::from_value::<PassRuleSpec>(
            json!({"name": "x", "earned_by": {"attendance": 1, "claims": 2}})
        )
        .is_err()
    );
}
