//! Quests that award points: a `quest` cue opens a window of `ttl_s` after it fires, in
//! which a viewer earns its points once — by tapping "I'm here" (`be_there`, the `here`
//! frame), by sending the quest's word in chat (`keyword`; only the first `first_n` with
//! one, counted by the store), by being granted a claim (`claim_within`) or by redeeming one
//! (`redeem_within`). The hub finds the open quests from the timeline (the same on every
//! node); the store awards each viewer once, inside the window, onto the drop's board
//! ([`Store::award`](dropwire_store::Store::award)); each award is a `quest.awarded` fact
//! and a board change the coalesced figures publish.

use dropwire_core::protocol::{QuestRef, ServerMsg};
use dropwire_core::timeline::FiredCue;
use dropwire_core::{Fact, QuestKind};
use dropwire_store::{AwardOutcome, QuestAward};

use super::DropHub;
use crate::auth::Viewer;

const MAX_RID: usize = 64;

fn result(rid: String, quest: Option<String>, outcome: Result<u32, &str>) -> ServerMsg {
    ServerMsg::QuestResult {
        rid,
        ok: outcome.is_ok(),
        quest,
        points: outcome.ok(),
        reason: outcome.err().map(str::to_owned),
    }
}

impl DropHub {
    /// The open quests of `kind` at `now`, each with its window.
    fn open_quests(&self, kind: QuestKind, now: u64) -> Vec<(FiredCue, u64)> {
        let (_, view) = self.view_at(now);
        view.open_quests(now)
            .filter(|(f, _)| f.cue.quest == Some(kind))
            .map(|(f, until)| (f.clone(), until))
            .collect()
    }

    /// Asks the store to award `fired` to a viewer; records the fact and marks the board
    /// changed when it awarded it just now.
    async fn award(
        &self,
        fired: &FiredCue,
        closes_ms: u64,
        viewer: &Viewer,
        rid: &str,
        now: u64,
    ) -> Result<AwardOutcome, dropwire_store::StoreError> {
        let quest = fired.key.tag();
        let points = fired.cue.points.unwrap_or(0);
        let req = QuestAward {
            drop_id: self.id.clone(),
            quest: quest.clone(),
            viewer_id: viewer.id.clone(),
            handle: viewer.handle.clone(),
            points,
            rid: rid.to_owned(),
            now_ms: now,
            opens_ms: fired.at_ms,
            closes_ms,
            limit: fired
                .cue
                .first_n
                .filter(|_| fired.cue.quest == Some(QuestKind::Keyword)),
        };
        let outcome = self.store().award(req).await?;
        if outcome == (AwardOutcome::Awarded { points }) {
            self.stock_changed();
            let kind = fired.cue.quest.map_or("", QuestKind::as_str);
            let fact = Fact::quest_awarded(self.id.as_str(), &quest, kind, &viewer.id, points, now)
                .by(&self.record().maker);
            // The same fact for a retried rid: the ledger keeps it once (its id).
            self.record_facts(vec![fact]);
        }
        Ok(outcome)
    }

    /// `{"type":"here","quest"?,"rid"}`: the viewer earns the open `be_there` quest.
    pub async fn here(
        &self,
        viewer: Option<&Viewer>,
        quest: Option<QuestRef>,
        rid: String,
    ) -> ServerMsg {
        if rid.is_empty() || rid.len() > MAX_RID {
            return ServerMsg::error("bad_frame", format!("rid must be 1-{MAX_RID} characters"));
        }
        let wanted = quest.map(|q| q.key());
        let Some(viewer) = viewer else {
            return result(rid, wanted, Err("unauthorized"));
        };
        let arrived = std::time::Instant::now();
        let pick = |now| {
            let open = self.open_quests(QuestKind::BeThere, now);
            match &wanted {
                Some(key) => open.into_iter().find(|(f, _)| f.key.tag() == *key),
                None => open.into_iter().last(),
            }
        };
        let mut now = self.now_ms();
        let mut found = pick(now);
        if found.is_none() {
            // As for a claim: a quest another node fired may not have been heard of yet.
            self.recheck_log(arrived).await;
            now = self.now_ms();
            found = pick(now);
        }
        let Some((fired, closes_ms)) = found else {
            return result(rid, wanted, Err("not_open"));
        };
        let key = Some(fired.key.tag());
        match self.award(&fired, closes_ms, viewer, &rid, now).await {
            Ok(AwardOutcome::Awarded { points }) => result(rid, key, Ok(points)),
            Ok(AwardOutcome::AlreadyAwarded) => result(rid, key, Err("already_awarded")),
            Ok(AwardOutcome::Closed) => result(rid, key, Err("not_open")),
            Ok(AwardOutcome::Full) => result(rid, key, Err("full")),
            Err(e) => {
                tracing::warn!(error = %e, "quest award failed in the store");
                result(rid, key, Err("unavailable"))
            }
        }
    }

    /// A viewer's accepted chat message `text` (rid `rid`): it earns every open `keyword`
    /// quest whose word it holds (whole word, any case). Answers `quest_result`s with the
    /// chat's rid: earned, or `full` (the first `first_n` earned it already); a quest the
    /// viewer earned before is not answered again. Costs nothing while none is open.
    pub async fn keyword_quests(&self, viewer: &Viewer, text: &str, rid: &str) -> Vec<ServerMsg> {
        let now = self.now_ms();
        let mut out = Vec::new();
        for (fired, closes_ms) in self.open_quests(QuestKind::Keyword, now) {
            let word = fired.cue.word.as_deref().unwrap_or_default().trim();
            if word.is_empty() || !dropwire_core::chat::has_word(text, word) {
                continue;
            }
            let key = Some(fired.key.tag());
            let answer = match self.award(&fired, closes_ms, viewer, rid, now).await {
                Ok(AwardOutcome::Awarded { points }) => Ok(points),
                Ok(AwardOutcome::Full) => Err("full"),
                Ok(AwardOutcome::AlreadyAwarded | AwardOutcome::Closed) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "quest award failed in the store");
                    Err("unavailable")
                }
            };
            out.push(result(rid.to_owned(), key, answer));
        }
        out
    }

    /// A viewer was granted a claim (`claim_within`) or redeemed one (`redeem_within`) at
    /// `at_ms`: it earns every open quest of that kind (once each; `rid` is the claim's
    /// code, so a retry is answered alike). Costs nothing while no such quest is open.
    pub async fn quests_on(&self, kind: QuestKind, viewer: &Viewer, rid: &str, at_ms: u64) {
        for (fired, closes_ms) in self.open_quests(kind, at_ms) {
            if let Err(e) = self.award(&fired, closes_ms, viewer, rid, at_ms).await {
                tracing::warn!(error = %e, quest = %fired.key.tag(), "quest award failed in the store");
            }
        }
    }
}
