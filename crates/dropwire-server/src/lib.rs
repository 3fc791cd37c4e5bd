//! The dropwire hub: viewer WebSocket fan-out, the control API, the scheduler, the pages
//! and the metrics, over a [`dropwire_store::Store`].
//!
//! # Layout
//!
//! - `app`: shared state ([`AppState`]), the router ([`app()`]), background tasks, and
//!   [`serve`] (which tests call on an ephemeral port).
//! - [`hub`]: one fan-out hub per drop: sequencing (alone, or with Redis through the bus to
//!   the other hub nodes: one `seq` order across nodes, gaps filled from the drop's stream,
//!   one copy of each cue), serialize-once broadcast written into every viewer's socket by
//!   the hub's writers (one per worker thread), history for resume and for viewers catching
//!   up, the timeline task that starts drops on schedule and fires cues, coalesced figures,
//!   claims and coupons, the hold sweeper.
//! - `ws`: the viewer WebSocket, one task per connection that reads the viewer's requests
//!   and writes whatever the hub's writer could not (its replies, a catch-up).
//! - `pending_draws`: a connection's fair-start entries, asked again at their draw's time.
//! - [`calendar`]: the launch calendar (upcoming drops, their iCalendar feed) and, with
//!   many nodes, the scan that loads the drops due to start by themselves.
//! - [`webhooks`]: delivering the ledger's outbox to the makers' endpoints (Standard
//!   Webhooks), and firing nurture timers.
//! - [`funnel`]: the funnel ledger's feed (facts written off the hot path) and its
//!   reconciliation with the store.
//! - `api`: the HTTP control API; [`openapi`]: its OpenAPI 3.1 document, generated from
//!   the handlers.
//! - [`pass_grants`]: what a viewer's passes grant in a drop (early access, a higher
//!   per-viewer limit), applied at hello, with whether a maker has a granting rule cached.
//! - [`pass_tokens`]: portable passes, signed JWS (EdDSA) with the key kept in the ledger,
//!   and `GET /.well-known/jwks.json`.
//! - `pages`: the embedded overlay, OBS and panel pages, and the API reference page.
//! - [`auth`]: the admin token and viewer tokens; [`caller`]: who asks an admin route (the
//!   operator or a maker, by its token) and what it may see.
//! - [`config`]: defaults ← file ← environment ← flags; the `DROPWIRE_*` variables.
//! - [`healthcheck`]: `dropwire healthcheck`, a readiness probe for containers.
//! - [`demo`]: `dropwire serve --demo`, the example drop made live at start.
//! - [`recipes`]: the recipes shipped in the binary, loaded on a ledger's first start.
//! - `metrics`, `admission` (the WebSocket handshake's limits), [`clock`], [`error`],
//!   [`encode`] (our values as JSON), [`sync`] (locks).
//!
//! Modules shown in backquotes only are the crate's own: the binary and the tests use the
//! others.

pub(crate) mod admission;
pub(crate) mod api;
pub(crate) mod app;
pub mod auth;
pub mod calendar;
pub mod caller;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod demo;
pub mod encode;
pub mod error;
pub mod funnel;
pub mod healthcheck;
pub mod hub;
pub mod metered;
pub(crate) mod metrics;
pub mod openapi;
pub(crate) mod pages;
pub mod pass_grants;
pub mod pass_tokens;
pub(crate) mod pending_draws;
pub mod recipes;
pub mod sync;
pub mod webhooks;
pub(crate) mod ws;

pub use app::{AppState, Options, app, serve};
pub use error::AppError;
