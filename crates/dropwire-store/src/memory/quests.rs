//! Quests on the embedded store: [`Store::award`](crate::Store::award) under the drop's
//! book lock, journaled (`Change::Award`) before the points land on the board. A quest
//! with a `limit` (first N) is full once that many viewers hold its award.

use super::MemoryStore;
use super::book::{Award, Change, lock};
use crate::{AwardOutcome, QuestAward, StoreError};

/// The answer an earlier award gives to `rid`.
fn earlier(award: &Award, rid: &str) -> AwardOutcome {
    if award.rid == rid {
        AwardOutcome::Awarded {
            points: award.points,
        }
    } else {
        AwardOutcome::AlreadyAwarded
    }
}

impl MemoryStore {
    pub(super) async fn award_quest(&self, req: QuestAward) -> Result<AwardOutcome, StoreError> {
        self.tick(req.now_ms);
        if let Some(slot) = self.archived(&req.drop_id)? {
            let known = lock(&slot.book)
                .awards
                .get(&req.quest)
                .and_then(|q| q.get(&req.viewer_id))
                .map(|a| earlier(a, &req.rid));
            if let Some(answer) = known {
                self.settled_so_far().await?;
                return Ok(answer);
            }
        }
        let (answer, pending) = {
            let (_gate, slot) = self.resident(&req.drop_id)?;
            let mut book = lock(&slot.book);
            let known = book
                .awards
                .get(&req.quest)
                .and_then(|q| q.get(&req.viewer_id))
                .map(|a| earlier(a, &req.rid));
            if let Some(answer) = known {
                (answer, None)
            } else if req.now_ms < req.opens_ms || req.now_ms >= req.closes_ms {
                return Ok(AwardOutcome::Closed);
            } else if req
                .limit
                .is_some_and(|n| book.awards.get(&req.quest).map_or(0, |q| q.len()) >= n as usize)
            {
                return Ok(AwardOutcome::Full);
            } else {
                let pending = self.journal(&Change::Award {
                    drop: req.drop_id.clone(),
                    quest: req.quest.clone(),
                    viewer: req.viewer_id.clone(),
                    handle: req.handle.clone(),
                    rid: req.rid.clone(),
                    points: req.points,
                    at_ms: req.now_ms,
                })?;
                slot.touch();
                let award = Award {
                    rid: req.rid.clone(),
                    points: req.points,
                };
                book.award(&req.quest, &req.viewer_id, &req.handle, award, req.now_ms);
                (AwardOutcome::Awarded { points: req.points }, Some(pending))
            }
        };
        match pending {
            Some(p) => Self::durable(p).await?,
            // The same answer again, once the record that decided it is surely on disk.
            None => self.settled_so_far().await?,
        }
        Ok(answer)
    }
}
