//! The timeline: the drop's visible state at time `now`, as a pure function of
//! (script, control log, now). Every hub node computes the same view from the same log,
//! so no node leads the timing, and a restarted node resumes at the right cue.
//!
//! Rules:
//! - Script cues fire when the drop's *live time* (time spent live; pauses do not count)
//!   reaches their `at_s`, in script order. Cues due at the same moment fire in index order.
//! - Fire-now of a script cue fires it at once; it does not fire again at its time.
//! - Each ad-hoc cue fires once, when its control entry is appended.
//! - A `close` cue, a manual close, or live time reaching `duration_s` closes the drop.
//! - A SKU's claim window is open from its `reveal` until the close, and shut while paused.
//!   With an early-access window of `e` ms, it is open to the drop's early-access segment
//!   alone from the reveal until `reveal + e` (wall time), and to everyone after.
//! - Fair start ([`TimelineView::draw_at_ms`]): with a SKU's `fair_start_ms` of `f`, claims
//!   in the first `f` ms after the SKU opens for the claimant (the reveal for the
//!   early-access segment during its window, `public_ms` for everyone else) are entered in
//!   a draw held at `open + f` (wall time: a pause does not move it).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::drop::DropSpec;
use crate::error::CoreError;
use crate::script::{Cue, CueType, Script};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DropState {
    Scheduled,
    Live,
    Paused,
    Closed,
}

impl DropState {
    pub fn as_str(self) -> &'static str {
        match self {
            DropState::Scheduled => "scheduled",
            DropState::Live => "live",
            DropState::Paused => "paused",
            DropState::Closed => "closed",
        }
    }
}

impl fmt::Display for DropState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `fire` names: a script cue by index, or an ad-hoc cue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum FireTarget {
    Script(usize),
    AdHoc(Box<Cue>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ControlAction {
    Start,
    Pause,
    Resume,
    Close,
    Fire {
        cue: FireTarget,
    },
    /// A chat moderation step ([`crate::chat`]): the timeline ignores it.
    Chat {
        op: crate::chat::ChatOp,
    },
}

impl ControlAction {
    pub fn name(&self) -> &'static str {
        match self {
            ControlAction::Start => "start",
            ControlAction::Pause => "pause",
            ControlAction::Resume => "resume",
            ControlAction::Close => "close",
            ControlAction::Fire { .. } => "fire",
            ControlAction::Chat { .. } => "chat",
        }
    }
}

/// One line of the control log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlEntry {
    pub at_ms: u64,
    #[serde(flatten)]
    pub action: ControlAction,
}

/// Which cue fired: a script cue by index, or the ad-hoc cue of control-log entry N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CueKey {
    Script(usize),
    AdHoc(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredCue {
    pub key: CueKey,
    /// Wall time it fired (Unix ms).
    pub at_ms: u64,
    /// Live time at which it fired.
    pub elapsed_ms: u64,
    pub cue: Cue,
}

impl CueKey {
    /// Its name in the store and on the wire: `s{index}` for a script cue, `a{log
    /// position}` for an ad-hoc one (a unique coupon's or a quest's key).
    pub fn tag(self) -> String {
        match self {
            CueKey::Script(i) => format!("s{i}"),
            CueKey::AdHoc(p) => format!("a{p}"),
        }
    }
}

impl FiredCue {
    /// The script index, or `None` for an ad-hoc cue (as the `cue` broadcast carries it).
    pub fn index(&self) -> Option<usize> {
        match self.key {
            CueKey::Script(i) => Some(i),
            CueKey::AdHoc(_) => None,
        }
    }
}

/// Whether a SKU can be claimed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimWindow {
    Open,
    /// Open to the early-access segment only, to everyone from `public_ms`.
    EarlyAccess {
        public_ms: u64,
    },
    NotOpen,
    Closed,
}

/// The drop's visible state at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineView {
    pub state: DropState,
    /// Live time so far, capped at the script's duration.
    pub elapsed_ms: u64,
    pub started_ms: Option<u64>,
    pub closed_ms: Option<u64>,
    /// Every cue fired so far, in firing order.
    pub fired: Vec<FiredCue>,
    /// The next script cue due and its projected wall time, while live.
    pub next: Option<(usize, u64)>,
    /// When live time will reach the script's end, while live.
    pub ends_ms: Option<u64>,
    /// Revealed SKUs and the wall time of their (first) reveal.
    revealed: BTreeMap<String, u64>,
    fired_script: Vec<bool>,
}

struct Walk<'a> {
    script: &'a Script,
    view: TimelineView,
    elapsed_before: u64,
    live_since: u64,
    last_t: u64,
}

impl<'a> Walk<'a> {
    fn elapsed_at(&self, t: u64) -> u64 {
        match self.view.state {
            DropState::Live => self
                .elapsed_before
                .saturating_add(t.saturating_sub(self.live_since)),
            _ => self.elapsed_before,
        }
    }

    /// The wall time at which live time reaches `elapsed_ms`, if the drop stays live. Wall
    /// times saturate: a log may hold any `at_ms` (a journal is read as written).
    fn wall_at(&self, elapsed_ms: u64) -> u64 {
        self.live_since
            .saturating_add(elapsed_ms.saturating_sub(self.elapsed_before))
    }

    fn fire(&mut self, key: CueKey, at_ms: u64, elapsed_ms: u64, cue: Cue) {
        if let CueKey::Script(i) = key {
            self.view.fired_script[i] = true;
        }
        if cue.kind == CueType::Reveal
            && let Some(sku) = &cue.sku
        {
            self.view.revealed.entry(sku.clone()).or_insert(at_ms);
        }
        let closes = cue.kind == CueType::Close;
        self.view.fired.push(FiredCue {
            key,
            at_ms,
            elapsed_ms,
            cue,
        });
        if closes {
            self.close(at_ms, elapsed_ms);
        }
    }

    fn close(&mut self, at_ms: u64, elapsed_ms: u64) {
        self.view.state = DropState::Closed;
        self.view.closed_ms = Some(at_ms);
        self.elapsed_before = elapsed_ms;
    }

    /// Lets live time run to wall time `t`, firing the script cues that fall due.
    fn advance_to(&mut self, t: u64) {
        let t = t.max(self.last_t);
        self.last_t = t;
        if self.view.state != DropState::Live {
            return;
        }
        let duration_ms = u64::from(self.script.duration_s) * 1000;
        let elapsed_t = self.elapsed_at(t).min(duration_ms);
        for i in 0..self.script.cues.len() {
            if self.view.state != DropState::Live {
                return;
            }
            let cue = &self.script.cues[i];
            if self.view.fired_script[i] {
                continue;
            }
            if cue.at_ms() > elapsed_t {
                break;
            }
            let wall = self.wall_at(cue.at_ms());
            self.fire(CueKey::Script(i), wall, cue.at_ms(), cue.clone());
        }
        if self.view.state == DropState::Live && elapsed_t >= duration_ms {
            let wall = self.wall_at(duration_ms);
            self.close(wall, duration_ms);
        }
    }

    fn apply(&mut self, pos: usize, entry: &ControlEntry) {
        if let ControlAction::Chat { .. } = entry.action {
            return;
        }
        self.advance_to(entry.at_ms);
        let t = self.last_t;
        let state = self.view.state;
        match &entry.action {
            ControlAction::Start if state == DropState::Scheduled => {
                self.view.state = DropState::Live;
                self.view.started_ms = Some(t);
                self.live_since = t;
                self.advance_to(t);
            }
            ControlAction::Pause if state == DropState::Live => {
                self.elapsed_before = self.elapsed_at(t);
                self.view.state = DropState::Paused;
            }
            ControlAction::Resume if state == DropState::Paused => {
                self.view.state = DropState::Live;
                self.live_since = t;
            }
            ControlAction::Close if state != DropState::Closed => {
                let elapsed = self.elapsed_at(t);
                self.close(t, elapsed);
            }
            ControlAction::Fire { cue } if matches!(state, DropState::Live | DropState::Paused) => {
                let elapsed = self.elapsed_at(t);
                match cue {
                    FireTarget::Script(i)
                        if *i < self.script.cues.len() && !self.view.fired_script[*i] =>
                    {
                        self.fire(CueKey::Script(*i), t, elapsed, self.script.cues[*i].clone());
                    }
                    FireTarget::AdHoc(cue) => {
                        self.fire(CueKey::AdHoc(pos), t, elapsed, (**cue).clone())
                    }
                    FireTarget::Script(_) => {}
                }
            }
            // Entries that make no sense from the state are never appended (see `check`);
            // an old log holding one is read as if it were absent.
            _ => {}
        }
    }
}

impl TimelineView {
    /// The drop's view at `now_ms`, from its script and control log.
    pub fn compute(script: &Script, log: &[ControlEntry], now_ms: u64) -> Self {
        let mut walk = Walk {
            script,
            view: TimelineView {
                state: DropState::Scheduled,
                elapsed_ms: 0,
                started_ms: None,
                closed_ms: None,
                fired: Vec::new(),
                next: None,
                ends_ms: None,
                revealed: BTreeMap::new(),
                fired_script: vec![false; script.cues.len()],
            },
            elapsed_before: 0,
            live_since: 0,
            last_t: 0,
        };
        for (pos, entry) in log.iter().enumerate() {
            walk.apply(pos, entry);
        }
        walk.advance_to(now_ms);
        let duration_ms = u64::from(script.duration_s) * 1000;
        let now = walk.last_t;
        walk.view.elapsed_ms = walk.elapsed_at(now).min(duration_ms);
        if walk.view.state == DropState::Live {
            walk.view.next = (0..script.cues.len())
                .find(|&i| !walk.view.fired_script[i])
                .map(|i| (i, walk.wall_at(script.cues[i].at_ms())));
            walk.view.ends_ms = Some(walk.wall_at(duration_ms));
        }
        walk.view
    }

    /// The next wall time at which this view changes without a control action.
    pub fn next_change_ms(&self) -> Option<u64> {
        match (self.next, self.ends_ms) {
            (Some((_, a)), Some(b)) => Some(a.min(b)),
            (a, b) => a.map(|(_, t)| t).or(b),
        }
    }

    /// The claim window of `sku` at `now_ms`, with an early-access window of
    /// `early_access_ms` after each reveal (0: none).
    pub fn window(&self, sku: &str, now_ms: u64, early_access_ms: u64) -> ClaimWindow {
        match self.state {
            DropState::Closed => ClaimWindow::Closed,
            DropState::Live => match self.public_opens_ms(sku, early_access_ms) {
                Some(public_ms) if early_access_ms > 0 && now_ms < public_ms => {
                    ClaimWindow::EarlyAccess { public_ms }
                }
                Some(_) => ClaimWindow::Open,
                None => ClaimWindow::NotOpen,
            },
            _ => ClaimWindow::NotOpen,
        }
    }

    /// The time of the fair-start draw that a claim of `sku` at `now_ms` belongs to, for a
    /// SKU with a fair-start window of `fair_start_ms` (0: none): the window that opened
    /// last for this claimant (the early-access one during early access, else the
    /// public one) ends then. `None` when fair start is off or the SKU is not open; a
    /// claim at or after the returned time is first come, first served (the store holds
    /// the draw first if nobody has yet).
    pub fn draw_at_ms(
        &self,
        sku: &str,
        now_ms: u64,
        early_access_ms: u64,
        fair_start_ms: u32,
    ) -> Option<u64> {
        if fair_start_ms == 0 {
            return None;
        }
        let opens = match self.window(sku, now_ms, early_access_ms) {
            ClaimWindow::EarlyAccess { .. } => *self.revealed.get(sku)?,
            ClaimWindow::Open => self.public_opens_ms(sku, early_access_ms)?,
            ClaimWindow::NotOpen | ClaimWindow::Closed => return None,
        };
        Some(opens.saturating_add(u64::from(fair_start_ms)))
    }

    /// Whether a claim of `sku` at `now_ms` is inside its fair-start window (it is entered
    /// in the draw at [`Self::draw_at_ms`] rather than served at once).
    pub fn in_draw_window(
        &self,
        sku: &str,
        now_ms: u64,
        early_access_ms: u64,
        fair_start_ms: u32,
    ) -> bool {
        self.draw_at_ms(sku, now_ms, early_access_ms, fair_start_ms)
            .is_some_and(|at| now_ms < at)
    }

    /// When the public may claim a revealed `sku`: its reveal plus the early-access window.
    pub fn public_opens_ms(&self, sku: &str, early_access_ms: u64) -> Option<u64> {
        self.revealed
            .get(sku)
            .map(|at| at.saturating_add(early_access_ms))
    }

    pub fn is_revealed(&self, sku: &str) -> bool {
        self.revealed.contains_key(sku)
    }

    /// The cue fired last, if any.
    pub fn current(&self) -> Option<&FiredCue> {
        self.fired.last()
    }

    /// Flash coupons fired and still valid at `now_ms` (a coupon's `ttl_s` runs on wall time).
    pub fn active_coupons(&self, now_ms: u64) -> impl Iterator<Item = (&FiredCue, u64)> {
        self.fired.iter().filter_map(move |f| {
            let ttl = f.cue.ttl_s?;
            let until = f.at_ms.saturating_add(u64::from(ttl) * 1000);
            (f.cue.kind == CueType::FlashCoupon && until > now_ms).then_some((f, until))
        })
    }

    /// The quests whose window is open at `now_ms`, each with the end of its window
    /// (`[at_ms, at_ms + ttl_s)`), in the order they fired.
    pub fn open_quests(&self, now_ms: u64) -> impl Iterator<Item = (&FiredCue, u64)> {
        self.fired.iter().filter_map(move |f| {
            let ttl = f.cue.ttl_s?;
            let until = f.at_ms.saturating_add(u64::from(ttl) * 1000);
            let open = f.cue.kind == CueType::Quest && f.at_ms <= now_ms && until > now_ms;
            open.then_some((f, until))
        })
    }

    /// Whether `action` may be appended to the log now. Ad-hoc cues are validated against the inventory.
    pub fn check(&self, action: &ControlAction, spec: &DropSpec) -> Result<(), CoreError> {
        let wrong = || CoreError::WrongState {
            action: action.name(),
            state: self.state,
        };
        match action {
            ControlAction::Start if self.state != DropState::Scheduled => Err(wrong()),
            ControlAction::Pause if self.state != DropState::Live => Err(wrong()),
            ControlAction::Resume if self.state != DropState::Paused => Err(wrong()),
            ControlAction::Close if self.state == DropState::Closed => Err(wrong()),
            ControlAction::Fire { .. }
                if !matches!(self.state, DropState::Live | DropState::Paused) =>
            {
                Err(wrong())
            }
            ControlAction::Fire {
                cue: FireTarget::Script(i),
            } => {
                let len = spec.script.cues.len();
                if *i >= len {
                    Err(CoreError::NoSuchCue { index: *i, len })
                } else if self.fired_script[*i] {
                    Err(CoreError::AlreadyFired { index: *i })
                } else {
                    Ok(())
                }
            }
            ControlAction::Fire {
                cue: FireTarget::AdHoc(cue),
            } => cue.validate("cue", &spec.inventory),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
