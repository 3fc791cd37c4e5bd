//! Why the server closes a viewer's socket, the close code each reason sends, and the
//! goodbye itself.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};

use super::Step;
use crate::app::AppState;
use crate::hub::WsSink;

/// Why the server closes a viewer's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Shutdown,
    SlowConsumer,
    Flooding,
    HelloTimeout,
    /// The client opened too many connections this minute, or holds too many.
    TooManyConnections,
    /// The client broke RFC 6455 (an unmasked frame, reserved bits or opcodes, a fragmented
    /// or oversized control frame, a malformed close frame, a stray continuation).
    ProtocolError,
    /// A text message, or a close frame's reason, that is not UTF-8.
    InvalidUtf8,
    /// A frame or message over 64 KiB (a frame is refused from its header, unread).
    TooBig,
}

impl CloseReason {
    /// The close code and reason of each: the one place they are decided.
    pub fn frame(self) -> CloseFrame {
        let (code, reason) = match self {
            CloseReason::Shutdown => (1001, "server shutting down; reconnect"),
            CloseReason::TooManyConnections => (1013, "too many connections; retry later"),
            CloseReason::SlowConsumer => (4008, "slow consumer: fell too far behind"),
            CloseReason::Flooding => (4029, "too many frames"),
            CloseReason::HelloTimeout => (4408, "no hello in time"),
            CloseReason::ProtocolError => (1002, "protocol error"),
            CloseReason::InvalidUtf8 => (1007, "text is not UTF-8"),
            CloseReason::TooBig => (1009, "frames and messages are limited to 64 KiB"),
        };
        CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }
    }

    /// The close a read error calls for (RFC 6455 §7.4.1), or `None` when the client is
    /// gone (a reset, an I/O error) and nothing can be said to it.
    pub(super) fn of_read_error(e: axum::Error) -> Option<CloseReason> {
        use tungstenite::error::{Error, ProtocolError};
        match *e.into_inner().downcast::<Error>().ok()? {
            Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
            Error::Protocol(_) => Some(CloseReason::ProtocolError),
            Error::Utf8(_) => Some(CloseReason::InvalidUtf8),
            Error::Capacity(_) => Some(CloseReason::TooBig),
            _ => None,
        }
    }
}

/// Ends a connection after `step`: flushes the answer to a client's close, or sends the
/// server's close frame and reads until the client's (bounded), so the kernel sends FIN,
/// not RST, and the client gets to read it.
pub(super) async fn goodbye(
    state: &AppState,
    sink: &mut WsSink,
    stream: &mut SplitStream<WebSocket>,
    step: Step,
) {
    let reason = match step {
        Step::Close(reason) => Some(reason),
        Step::ClosedByClient => {
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.flush()).await;
            None
        }
        Step::Continue | Step::Gone => None,
    };
    if let Some(reason) = reason {
        match reason {
            CloseReason::SlowConsumer => state.metrics.slow_disconnects.inc(),
            CloseReason::Flooding => state.metrics.flood_disconnects.inc(),
            _ => {}
        }
        tracing::debug!(?reason, "closing viewer");
        let close = sink.send(Message::Close(Some(reason.frame())));
        if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(1), close).await {
            // Read until the client's close (bounded), so the kernel sends FIN, not RST,
            // and the client gets to read our close frame.
            let drain = async {
                while let Some(Ok(msg)) = stream.next().await {
                    if let Message::Close(_) = msg {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        }
    }
}
