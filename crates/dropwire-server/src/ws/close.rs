//! Why the server closes a viewer's socket, and the close code each reason sends.

use axum::extract::ws::{CloseFrame, Utf8Bytes};

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
