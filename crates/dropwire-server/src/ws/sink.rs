//! The connection's side of its outlet (the policy is in the hub's `fanout`): the task
//! takes the socket's writing half back from the writer to write its own replies, or when
//! the writer woke it (a broadcast it could not write, or left unflushed); it then flushes,
//! writes the broadcasts after its last one from the hub's history, and hands the half back
//! once nothing was skipped meanwhile. Every viewer gets the broadcasts in `seq` order, with
//! no gap and no duplicate, each under the send timeout.

use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::SinkExt;

use super::{CloseReason, Connection, Step};

/// One connection in this many records its delivery latency.
const SAMPLE_EVERY: u64 = 64;

impl Connection {
    /// Takes the writing half back from the writer, if it has it.
    pub(super) fn hold(&mut self) -> Step {
        if self.sink.is_none()
            && let Some(registration) = &self.outlet
        {
            let (sink, last_seq) = registration.outlet().take();
            self.sink = sink;
            self.last_seq = last_seq;
        }
        if self.sink.is_some() {
            Step::Continue
        } else {
            Step::Gone
        }
    }

    /// Writes one frame (a reply, or a broadcast being caught up), under the send timeout.
    pub(super) async fn write(&mut self, text: Utf8Bytes) -> Step {
        if let Step::Gone = self.hold() {
            return Step::Gone;
        }
        let Some(sink) = self.sink.as_mut() else {
            return Step::Gone;
        };
        self.state.metrics.messages_sent.inc();
        match tokio::time::timeout(self.state.send_timeout, sink.send(Message::Text(text))).await {
            Ok(Ok(())) => Step::Continue,
            Ok(Err(_)) => Step::Gone,
            Err(_) => Step::Close(CloseReason::SlowConsumer),
        }
    }

    /// Flushes, catches up from the history and hands the writing half back to the writer,
    /// until nothing was skipped meanwhile. Before the welcome the task keeps it.
    pub(super) async fn release(&mut self) -> Step {
        let Some(outlet) = self.outlet.as_ref().map(|r| Arc::clone(r.outlet())) else {
            return Step::Continue;
        };
        loop {
            if let Step::Gone = self.hold() {
                return Step::Gone;
            }
            let Some(sink) = self.sink.as_mut() else {
                return Step::Gone;
            };
            match tokio::time::timeout(self.state.send_timeout, sink.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Step::Gone,
                Err(_) => return Step::Close(CloseReason::SlowConsumer),
            }
            let Some(frames) = self.hub.frames_after(self.last_seq) else {
                tracing::debug!(last_seq = self.last_seq, "viewer fell behind");
                return Step::Close(CloseReason::SlowConsumer);
            };
            let behind = frames.len();
            for (i, frame) in frames.into_iter().enumerate() {
                if self.conn.is_multiple_of(SAMPLE_EVERY) {
                    let metrics = &self.state.metrics;
                    let waited = frame.published.elapsed().as_secs_f64();
                    metrics.delivery_seconds.observe(waited);
                    metrics.queue_lag.observe((behind - i) as f64);
                }
                let seq = frame.seq;
                if let step @ (Step::Gone | Step::Close(_)) = self.write(frame.text).await {
                    return step;
                }
                self.last_seq = seq;
            }
            let Some(sink) = self.sink.take() else {
                return Step::Gone;
            };
            match outlet.give_back(sink, self.last_seq) {
                Ok(()) => return Step::Continue,
                Err(sink) => self.sink = Some(sink),
            }
        }
    }
}
