//! Chat load (`--chat-per-s R --chatters N`): N signed-in viewers each send a `chat`
//! frame every N/R seconds, their phases spread evenly, so the drop hears R messages a
//! second in all while the measured broadcasts run. What they sent, what the hub answered
//! and how many chat broadcasts reached the viewers go in the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use dropwire_core::protocol::ClientMsg;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

/// The chat load every chatter follows.
#[derive(Debug)]
pub struct ChatPlan {
    /// Viewers `0..chatters` chat (they hold tokens).
    pub chatters: usize,
    /// Between two messages of one chatter.
    pub every: Duration,
    /// True while the chatters should talk (the measured broadcasts).
    pub on: watch::Receiver<bool>,
    /// Every chatter's schedule counts from here, so phases stay spread whenever each
    /// connected (or resumed).
    pub epoch: Instant,
}

impl ChatPlan {
    /// `rate` messages a second over `chatters` viewers; `None` for no chat.
    pub fn new(rate: f64, chatters: usize, on: watch::Receiver<bool>) -> Option<ChatPlan> {
        (rate > 0.0 && chatters > 0).then(|| ChatPlan {
            chatters,
            every: Duration::from_secs_f64(chatters as f64 / rate),
            on,
            epoch: Instant::now(),
        })
    }

    /// When chatter `idx` first speaks, after the start: spread evenly over one period.
    pub fn phase(&self, idx: usize) -> Duration {
        self.every
            .mul_f64((idx % self.chatters) as f64 / self.chatters as f64)
    }

    /// Chatter `idx`'s first turn at or after `now`, on its schedule from the epoch.
    pub fn next_turn(&self, idx: usize, now: Instant) -> Instant {
        let first = self.epoch + self.phase(idx);
        if now <= first {
            return first;
        }
        let behind = (now - first).as_secs_f64() / self.every.as_secs_f64();
        first + self.every.mul_f64(behind.ceil())
    }
}

/// Message `n` of chatter `idx`: a frame with its rid, of a realistic length.
pub fn frame(idx: usize, n: u64) -> String {
    let msg = ClientMsg::Chat {
        text: format!(
            "viewer {idx} says: love the glaze on these, can't wait for the reveal ({n})"
        ),
        rid: format!("m{idx}-{n}"),
    };
    serde_json::to_string(&msg).unwrap_or_default()
}

/// What the chatters did, summed over viewers (and processes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCounts {
    pub sent: u64,
    pub ok: u64,
    /// Refusals by reason (`rate_limited`, `slow_mode`, …).
    pub refused: BTreeMap<String, u64>,
    /// `chat` broadcasts received, over every viewer.
    pub frames: u64,
    /// Messages in those broadcasts, over every viewer.
    pub messages: u64,
}

impl ChatCounts {
    pub fn add(&mut self, other: &ChatCounts) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.frames += other.frames;
        self.messages += other.messages;
        for (k, v) in &other.refused {
            *self.refused.entry(k.clone()).or_default() += v;
        }
    }

    /// One line for the summary (nothing when nobody chatted).
    pub fn human(&self, s: &mut String, viewers: u64) {
        if self.sent == 0 && self.frames == 0 {
            return;
        }
        let per = |x: u64| x as f64 / viewers.max(1) as f64;
        let _ = writeln!(
            s,
            "chat: {} sent, {} ok, refused {:?}; per viewer {:.1} chat broadcasts carrying {:.1} messages",
            self.sent,
            self.ok,
            self.refused,
            per(self.frames),
            per(self.messages)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_spread_over_the_chatters() {
        let (_tx, rx) = watch::channel(false);
        let plan = ChatPlan::new(50.0, 100, rx.clone()).unwrap();
        assert_eq!(plan.every, Duration::from_secs(2));
        assert_eq!(plan.phase(0), Duration::ZERO);
        assert_eq!(plan.phase(50), Duration::from_secs(1));
        let t = plan.epoch + Duration::from_millis(2500);
        assert_eq!(plan.next_turn(0, t), plan.epoch + Duration::from_secs(4));
        assert_eq!(plan.next_turn(50, t), plan.epoch + Duration::from_secs(3));
        assert_eq!(
            plan.next_turn(50, plan.epoch),
            plan.epoch + Duration::from_secs(1)
        );
        assert!(ChatPlan::new(0.0, 100, rx.clone()).is_none());
        assert!(ChatPlan::new(50.0, 0, rx).is_none());
    }

    #[test]
    fn a_frame_is_a_chat_with_a_unique_rid() {
        let v: serde_json::Value = serde_json::from_str(&frame(7, 3)).unwrap();
        assert_eq!(v["type"], "chat");
        assert_eq!(v["rid"], "m7-3");
        let text = v["text"].as_str().unwrap();
        assert!((1..=280).contains(&text.chars().count()));
    }

    #[test]
    fn counts_add_up() {
        let mut a = ChatCounts {
            sent: 3,
            ok: 2,
            refused: BTreeMap::from([("rate_limited".into(), 1)]),
            frames: 10,
            messages: 30,
        };
        a.add(&a.clone());
        assert_eq!((a.sent, a.ok, a.frames, a.messages), (6, 4, 20, 60));
        assert_eq!(a.refused["rate_limited"], 2);
    }
}
