//! The hub's integration tests, one binary (one link, not one per file): each module is a
//! real server on an ephemeral port — in this process, or the `dropwire` binary in its own —
//! with real WebSockets, a real `redis-server` or PostgreSQL where the module needs one.
//! Run one module with `cargo test -p dropwire-server --test it multinode::`.

mod common;

mod analytics;
mod bad_input;
mod calendar;
mod chat;
mod chat_moderation;
mod chat_nodes;
mod chat_quests;
mod claims;
mod coops;
mod demo;
mod docs;
mod fanout;
mod followup;
mod healthcheck;
mod idle;
mod ledger;
mod ledger_crash;
mod maker;
mod metrics;
mod multinode;
mod multinode_figures;
mod multinode_funnel;
mod multinode_memory;
mod openapi;
mod passes;
mod quests;
mod recipes;
mod redis;
mod restart;
mod schedule;
mod startup;
mod tenancy;
mod tenancy_tokens;
mod timeline;
mod waitlist;
mod webhooks;
mod webhooks_crash;
mod ws_abuse;
