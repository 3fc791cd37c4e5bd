//! Quests on Redis: [`Store::award`](crate::Store::award) is one script (`award.lua`) on
//! the drop's slot, which checks the earlier award of the (quest, viewer) in the drop's
//! `awards` hash (`quest \0 viewer` → `{rid, points}`), the window, and adds the points to
//! the viewer's score in the same step. A quest with a `limit` (first N) counts its awards
//! in `conf` (`awarded:QUEST`) and is full at the limit.

use super::conn::within;
use super::reply::bad_reply;
use super::{RedisStore, key};
use crate::{AwardOutcome, QuestAward, StoreError};

impl RedisStore {
    pub(super) async fn award_quest(&self, req: QuestAward) -> Result<AwardOutcome, StoreError> {
        let mut inv = self.shared.scripts.award.prepare_invoke();
        for part in ["rec", "conf", "awards", "scores", "events"] {
            inv.key(key(&req.drop_id, part));
        }
        inv.arg(&req.quest)
            .arg(&req.viewer_id)
            .arg(&req.handle)
            .arg(req.points)
            .arg(&req.rid)
            .arg(req.now_ms)
            .arg(req.opens_ms)
            .arg(req.closes_ms)
            .arg(req.limit.map(|n| n.to_string()).unwrap_or_default());
        let reply: Vec<String> = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        match (reply.first().map(String::as_str), reply.get(1)) {
            (Some("A"), Some(points)) => Ok(AwardOutcome::Awarded {
                points: points.parse().map_err(|_| bad_reply("award.lua", &reply))?,
            }),
            (Some("D"), None) => Ok(AwardOutcome::AlreadyAwarded),
            (Some("C"), None) => Ok(AwardOutcome::Closed),
            (Some("F"), None) => Ok(AwardOutcome::Full),
            (Some("X"), None) => Err(StoreError::NoSuchDrop(req.drop_id.clone())),
            _ => Err(bad_reply("award.lua", &reply)),
        }
    }
}
