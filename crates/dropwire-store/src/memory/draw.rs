//! Fair start in the embedded store: the entries of a SKU's draw, and the draw itself.
//!
//! A SKU's ledger keeps its draws by their time (`draw_at_ms`). A claim that arrives before
//! its draw's time is *entered* (journaled as [`Change::Enter`], with the hub's random
//! ticket and the claim code it will get if it wins) and answered
//! [`ClaimOutcome::Entered`]. The first claim of the SKU at or after a draw's time holds the
//! draw, under the SKU's lock: the entries in order of (ticket, viewer, rid) are granted as
//! ordinary claims (each journaled as a [`Change::Claim`], dated at the draw's time) until
//! stock or the per-viewer limit refuses them, and a [`Change::Drawn`] record keeps every
//! entry's answer. The draw is a function of the entries and the SKU's state alone, so a
//! draw cut short by a crash (claims journaled, no `Drawn` yet) is finished by the next
//! claim exactly as it would have gone on.

use std::collections::{BTreeMap, HashMap};

use dropwire_core::claim::claim_points;
use dropwire_core::{Claim, ClaimCode, ClaimOutcome, ClaimReason, ClaimState, DropId};
use serde::{Deserialize, Serialize};

use super::MemoryStore;
use super::book::{Change, DropSlot, SkuLedger, lock};
use crate::journal::PendingWrite;
use crate::{ClaimRequest, StoreError, new_claim_code, new_ticket};

/// One SKU's draws by their time.
pub(super) type Draws = BTreeMap<u64, Draw>;

/// The entries of one draw and, once it is held, their answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Draw {
    pub(super) entries: Vec<DrawEntry>,
    pub(super) drawn: bool,
    /// Viewer → rid → its answer (an entry granted before a crash cut the draw short has
    /// one while `drawn` is still false).
    #[serde(default)]
    pub(super) decided: HashMap<String, HashMap<String, Decided>>,
}

/// A claim entered in a draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DrawEntry {
    pub(super) viewer: String,
    pub(super) handle: String,
    pub(super) rid: String,
    pub(super) ticket: u64,
    /// The claim's code if the draw grants it.
    pub(super) code: ClaimCode,
    /// The viewer's own per-viewer limit when a pass raised it ([`crate::ClaimRequest`]'s
    /// `per_viewer_limit`), which the draw honours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) raised: Option<u32>,
}

/// A drawn entry's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Decided {
    Granted(ClaimCode),
    Refused(ClaimReason),
}

impl Draw {
    pub(super) fn decided(&self, viewer: &str, rid: &str) -> Option<&Decided> {
        self.decided.get(viewer).and_then(|d| d.get(rid))
    }

    fn decide(&mut self, viewer: &str, rid: &str, answer: Decided) {
        self.decided
            .entry(viewer.to_owned())
            .or_default()
            .insert(rid.to_owned(), answer);
    }

    fn entries_of(&self, viewer: &str) -> u32 {
        self.entries.iter().filter(|e| e.viewer == viewer).count() as u32
    }

    /// The viewer's entries and answers become the tombstone's (an erasure).
    pub(super) fn erase(&mut self, viewer: &str, tombstone: &str) {
        for e in self.entries.iter_mut().filter(|e| e.viewer == viewer) {
            e.viewer = tombstone.to_owned();
            e.handle = crate::ERASED_HANDLE.to_owned();
        }
        if let Some(d) = self.decided.remove(viewer) {
            self.decided.insert(tombstone.to_owned(), d);
        }
    }

    /// Notes a replayed grant of an entry (its claim is dated at the draw's time).
    pub(super) fn note_grant(&mut self, claim: &Claim) {
        let entered = self
            .entries
            .iter()
            .any(|e| e.viewer == claim.viewer_id && e.rid == claim.rid);
        if entered {
            self.decide(
                &claim.viewer_id,
                &claim.rid,
                Decided::Granted(claim.code.clone()),
            );
        }
    }
}

/// What a claim of an entered rid, or a new claim inside a draw's window, comes to.
pub(super) enum Drawn {
    /// Granted by the draw: the claim is in the book under this code.
    Granted(ClaimCode),
    /// Answered (entered, or refused by the draw or at entry).
    Answer(ClaimOutcome),
    /// Not a draw's business: serve it first come, first served.
    Serve,
}

impl MemoryStore {
    /// Holds every draw of the SKU that is due at `now_ms` and not yet held. Call it under
    /// the gate, the viewer's lock and the SKU's lock. Returns the last journal write.
    pub(super) fn hold_due_draws(
        &self,
        slot: &DropSlot,
        drop: &DropId,
        sku: &str,
        ledger: &mut SkuLedger,
        now_ms: u64,
    ) -> Result<Option<PendingWrite>, StoreError> {
        let due: Vec<u64> = ledger
            .draws
            .range(..=now_ms)
            .filter(|(_, d)| !d.drawn)
            .map(|(at, _)| *at)
            .collect();
        let mut last = None;
        for at in due {
            last = self.hold_draw(slot, drop, sku, ledger, at)?.or(last);
        }
        Ok(last)
    }

    fn hold_draw(
        &self,
        slot: &DropSlot,
        drop: &DropId,
        sku: &str,
        ledger: &mut SkuLedger,
        at: u64,
    ) -> Result<Option<PendingWrite>, StoreError> {
        let hold_ms = u64::from(slot.hold_s()) * 1000;
        let mut draw = ledger.draws.remove(&at).unwrap_or_default();
        let mut order: Vec<DrawEntry> = draw.entries.clone();
        order.sort_by(|a, b| (a.ticket, &a.viewer, &a.rid).cmp(&(b.ticket, &b.viewer, &b.rid)));
        let mut last = None;
        let mut result = Ok(());
        for entry in order {
            if draw.decided(&entry.viewer, &entry.rid).is_some() {
                continue;
            }
            if let Some(reason) = ledger.refusal(&entry.viewer, entry.raised) {
                draw.decide(&entry.viewer, &entry.rid, Decided::Refused(reason));
                continue;
            }
            let claim = Claim {
                code: entry.code.clone(),
                drop_id: drop.clone(),
                sku: sku.to_owned(),
                viewer_id: entry.viewer.clone(),
                handle: entry.handle.clone(),
                rid: entry.rid.clone(),
                state: ClaimState::Held,
                created_ms: at,
                hold_until_ms: at.saturating_add(hold_ms),
                redeemed_ms: None,
                expired_ms: None,
                rank: ledger.granted,
                points: claim_points(ledger.granted),
            };
            match self.journal(&Change::Claim {
                claim: claim.clone(),
            }) {
                Ok(p) => last = p.or(last),
                Err(e) => {
                    // Granted so far stands; the rest is drawn by the next claim.
                    result = Err(e);
                    break;
                }
            }
            slot.touch();
            ledger.take(&entry.viewer);
            draw.decide(
                &entry.viewer,
                &entry.rid,
                Decided::Granted(claim.code.clone()),
            );
            self.inner.codes.insert(claim.code.clone(), drop.clone());
            self.inner
                .due
                .hold(slot, drop, claim.hold_until_ms, claim.code.clone());
            lock(&slot.book).add(claim);
        }
        if result.is_ok() {
            let change = Change::Drawn {
                drop: drop.clone(),
                sku: sku.to_owned(),
                at_ms: at,
                decided: draw.decided.clone(),
            };
            match self.journal(&change) {
                Ok(p) => {
                    last = p.or(last);
                    slot.touch();
                    draw.drawn = true;
                }
                Err(e) => result = Err(e),
            }
        }
        ledger.draws.insert(at, draw);
        result.map(|()| last)
    }

    /// The answer to `req` if a draw decides it: an entered rid (`entered` = its SKU's
    /// draw time), or a new rid inside its draw's window. Call it under the gate and the
    /// viewer's lock, with the SKU's ledger; `entered_now` is set when this call entered it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn in_draw(
        &self,
        slot: &DropSlot,
        req: &ClaimRequest,
        ledger: &mut SkuLedger,
        entered: Option<u64>,
        pending: &mut Option<PendingWrite>,
    ) -> Result<Drawn, StoreError> {
        if let Some(p) = self.hold_due_draws(slot, &req.drop_id, &req.sku, ledger, req.now_ms)? {
            *pending = Some(p);
        }
        if let Some(at) = entered {
            let Some(draw) = ledger.draws.get(&at) else {
                return Ok(Drawn::Serve);
            };
            return Ok(match draw.decided(&req.viewer_id, &req.rid) {
                Some(Decided::Granted(code)) => Drawn::Granted(code.clone()),
                Some(Decided::Refused(reason)) => Drawn::Answer(ClaimOutcome::Refused(*reason)),
                None => Drawn::Answer(ClaimOutcome::Entered { draw_at_ms: at }),
            });
        }
        let Some(at) = req.draw_at_ms.filter(|at| req.now_ms < *at) else {
            return Ok(Drawn::Serve);
        };
        let draw = ledger.draws.get(&at);
        if draw.is_some_and(|d| d.drawn) {
            return Ok(Drawn::Serve);
        }
        let entries = draw.map_or(0, |d| d.entries_of(&req.viewer_id));
        let held = ledger.per_viewer.get(&req.viewer_id).copied().unwrap_or(0);
        let limit = ledger.limit.max(req.per_viewer_limit.unwrap_or(0));
        if held.saturating_add(entries) >= limit {
            return Ok(Drawn::Answer(ClaimOutcome::Refused(
                ClaimReason::LimitReached,
            )));
        }
        if ledger.left == 0 {
            return Ok(Drawn::Answer(ClaimOutcome::Refused(ClaimReason::SoldOut)));
        }
        let entry = DrawEntry {
            viewer: req.viewer_id.clone(),
            handle: req.handle.clone(),
            rid: req.rid.clone(),
            ticket: match req.ticket {
                Some(t) => t,
                None => new_ticket()?,
            },
            code: new_claim_code()?,
            raised: req.per_viewer_limit,
        };
        let p = self.journal(&Change::Enter {
            drop: req.drop_id.clone(),
            sku: req.sku.clone(),
            at_ms: at,
            entry: entry.clone(),
        })?;
        slot.touch();
        *pending = p.or(pending.take());
        ledger.draws.entry(at).or_default().entries.push(entry);
        Ok(Drawn::Answer(ClaimOutcome::Entered { draw_at_ms: at }))
    }
}

/// Replays an entry.
pub(super) fn replay_enter(ledger: &mut SkuLedger, at: u64, entry: DrawEntry) {
    let draw = ledger.draws.entry(at).or_default();
    if !draw
        .entries
        .iter()
        .any(|e| e.viewer == entry.viewer && e.rid == entry.rid)
    {
        draw.entries.push(entry);
    }
}

/// Replays a draw's end.
pub(super) fn replay_drawn(
    ledger: &mut SkuLedger,
    at: u64,
    decided: HashMap<String, HashMap<String, Decided>>,
) {
    let draw = ledger.draws.entry(at).or_default();
    draw.decided = decided;
    draw.drawn = true;
}
