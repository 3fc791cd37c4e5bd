//! The dropwire domain, pure: no sockets, no Redis, no clock. Everything that depends on
//! time takes `now_ms` (Unix epoch milliseconds) as an argument, so every hub node
//! computes the same answer from the same inputs.
//!
//! # Layout
//!
//! - [`ids`]: drop ids (slugs), viewer ids, claim codes.
//! - [`mod@drop`]: the create body ([`DropSpec`]), inventory, the stored [`DropRecord`].
//! - [`script`]: cues and script validation, with messages that name the cue.
//! - [`timeline`]: the control log and the drop's visible state at a time, as a pure
//!   function of (script, control log, now).
//! - [`chat`]: chat messages, the host's moderation (kept in the control log), the
//!   rules a message meets.
//! - [`claim`]: claim records, outcomes, the leaderboard scoring rule.
//! - [`coop`]: co-ops (makers sharing a launch calendar): their rules, and which of their
//!   drops' live windows collide.
//! - [`followup`]: the follow-up of a claim (confirmation, cross-sell, coupon) and the
//!   nurture schedule after a redemption.
//! - [`funnel`]: the facts the funnel ledger records, with ids derived from what they describe.
//! - [`recipe`]: reusable drop templates with `{{name}}` parameters, and how a drop is
//!   made from one (or one from a drop).
//! - [`waitlist`]: the waitlist join (intent, consent, contact) and its rules.
//! - [`protocol`]: the viewer WebSocket's frames, as in `API.md`.
//! - [`schedule`]: the launch calendar's rules: when a drop starts by itself, which drops
//!   the calendar lists.
//! - [`error`]: this crate's error type.

pub mod chat;
pub mod claim;
pub mod coop;
pub mod drop;
pub mod error;
pub mod followup;
pub mod funnel;
pub mod ids;
pub mod protocol;
pub mod recipe;
pub mod schedule;
pub mod script;
pub mod timeline;
pub mod waitlist;

pub use claim::{Claim, ClaimOutcome, ClaimReason, ClaimState, LeaderEntry};
pub use drop::{DropKind, DropRecord, DropSpec, InventoryItem, StartsAt};
pub use error::CoreError;
pub use funnel::{Fact, FactKind};
pub use ids::{ClaimCode, DropId};
pub use recipe::{RecipeRef, RecipeSpec};
pub use script::{Cue, CueType, QuestKind, Script};
pub use timeline::{ControlAction, ControlEntry, DropState, FireTarget, TimelineView};
