//! A connection's requests that repeat or wait: a chat rid sent again gets its first answer
//! (and nothing is sent twice), and a claim entered in a fair-start draw is asked for again
//! at the draw's time, from the connection's own loop, so the viewer keeps receiving.

use std::time::Duration;

use dropwire_core::protocol::ServerMsg;

use super::{Connection, Step};

/// Chat rids a connection remembers.
const CHAT_RIDS: usize = 64;

impl Connection {
    /// A chat message: a rid seen lately gets its first answer again, and nothing is sent.
    pub(super) fn chat(&mut self, text: &str, rid: String) -> ServerMsg {
        if let Some((_, answer)) = self.chat_rids.iter().find(|(r, _)| *r == rid) {
            return answer.clone();
        }
        let answer = self
            .hub
            .chat(self.viewer.as_ref(), self.maker, text, rid.clone());
        let outcome = match &answer {
            ServerMsg::ChatResult { ok: true, .. } => "sent",
            ServerMsg::ChatResult {
                reason: Some(r), ..
            } => r.as_str(),
            _ => "bad_frame",
        };
        self.state
            .metrics
            .chat_messages
            .with_label_values(&[outcome])
            .inc();
        if matches!(answer, ServerMsg::ChatResult { .. }) {
            if self.chat_rids.len() >= CHAT_RIDS {
                self.chat_rids.pop_front();
            }
            self.chat_rids.push_back((rid, answer.clone()));
        }
        answer
    }

    /// Fair start: an entry's result will be asked for at its draw's time (or, when the
    /// store still says "entered" then, a moment later).
    pub(super) fn await_draw(&mut self, reply: &ServerMsg, again: Option<tokio::time::Instant>) {
        if let ServerMsg::DrawEntered {
            rid,
            sku,
            draw_at_ms,
        } = reply
        {
            let at = self.hub.instant_at(*draw_at_ms);
            let at = again.map_or(at, |a| a.max(at));
            self.draws.push(at, sku.clone(), rid.clone());
        }
    }

    /// Asks again for the entries whose draw is due and sends each its `claim_result`.
    pub(super) async fn drawn(&mut self) -> Step {
        let now = tokio::time::Instant::now();
        for (sku, rid) in self.draws.take_due(now) {
            let viewer = self.viewer.as_ref();
            let reply = self
                .hub
                .claim_raised(viewer, self.raised_limit, sku, rid)
                .await;
            self.await_draw(&reply, Some(now + Duration::from_millis(10)));
            if !matches!(reply, ServerMsg::DrawEntered { .. }) {
                let step = self.send(&reply).await;
                if !matches!(step, Step::Continue) {
                    return step;
                }
            }
        }
        Step::Continue
    }
}
