//! The dropwire hub: viewer WebSocket fan-out, the control API, the scheduler, the pages
//! and the metrics, over a [`dropwire_store::Store`].
//!
//! # Layout
//!
//! - [`app`]: shared state ([`app::AppState`]), the router ([`app::app`]), background
//!   tasks, and [`app::serve`] (which tests call on an ephemeral port).
//! - [`hub`]: one fan-out hub per drop: sequencing, serialize-once broadcast, history for
//!   resume, the timeline task that fires cues, coalesced figures.
//! - [`relay`]: with Redis, a hub's link to the other hub nodes (one `seq` order across
//!   nodes, gaps filled from the drop's stream, one copy of each cue).
//! - [`ws`]: the viewer WebSocket, one task per connection.
//! - [`requests`]: claims and coupons asked over the socket.
//! - [`webhooks`]: delivering the ledger's outbox to the makers' endpoints (Standard
//!   Webhooks), and firing nurture timers.
//! - [`funnel`]: the funnel ledger's feed (facts written off the hot path) and its
//!   reconciliation with the store.
//! - [`api`]: the HTTP control API; [`openapi`]: its OpenAPI 3.1 document, generated from
//!   the handlers.
//! - [`pages`]: the embedded overlay, OBS and panel pages, and the API reference page.
//! - [`auth`]: the admin token and viewer tokens.
//! - [`config`]: defaults ← file ← environment ← flags; the `DROPWIRE_*` variables.
//! - [`healthcheck`]: `dropwire healthcheck`, a readiness probe for containers.
//! - [`demo`]: `dropwire serve --demo`, the example drop made live at start.
//! - [`recipes`]: the recipes shipped in the binary, loaded on a ledger's first start.
//! - [`metrics`], [`clock`], [`error`].

pub mod admission;
pub mod api;
pub mod app;
pub mod auth;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod funnel;
pub mod healthcheck;
pub mod hub;
pub mod metered;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod recipes;
pub mod relay;
pub mod requests;
pub mod webhooks;
pub mod ws;

pub use app::{AppState, Options, app, serve};
pub use error::AppError;
