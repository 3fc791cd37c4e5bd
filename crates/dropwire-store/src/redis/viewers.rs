//! A viewer across the Redis store's drops: joining a drop's early-access segment
//! (`admit.lua`: a set per drop, read by `claim.lua`), and erasure (`erase.lua`, once per
//! drop: each drop's keys share one hash tag, so this works on a cluster too).

use dropwire_core::DropId;

use super::conn::within;
use super::{RedisStore, key};
use crate::{ERASED_HANDLE, StoreError};

impl RedisStore {
    pub(super) async fn admit_to(&self, drop: &DropId, viewer: &str) -> Result<(), StoreError> {
        let mut inv = self.shared.scripts.admit.prepare_invoke();
        inv.key(key(drop, "rec")).key(key(drop, "members"));
        inv.arg(viewer);
        let added: i64 = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        if added == 0 {
            return Err(StoreError::NoSuchDrop(drop.clone()));
        }
        Ok(())
    }

    pub(super) async fn erase_everywhere(
        &self,
        viewer: &str,
        tombstone: &str,
    ) -> Result<u64, StoreError> {
        let mut changed = 0;
        for id in self.drop_ids().await? {
            let mut inv = self.shared.scripts.erase.prepare_invoke();
            for part in [
                "rec", "claims", "order", "per", "rids", "refused", "scores", "coupons", "members",
                "awards", "draw", "entrants",
            ] {
                inv.key(key(&id, part));
            }
            inv.arg(viewer).arg(tombstone).arg(ERASED_HANDLE);
            let n: i64 = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
            changed += u64::try_from(n).unwrap_or(0);
        }
        Ok(changed)
    }
}
