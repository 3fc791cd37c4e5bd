//! A light reading of the server's frames: just what the swarm measures (`type`, `seq`,
//! `ts`, and for claim results `ok`/`reason`), borrowed from the frame's bytes. A full
//! [`dropwire_core::protocol::ServerMsg`] would build every cue and snapshot for nothing.

use std::borrow::Cow;

use serde::Deserialize;

/// What one server frame is, for the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Welcome,
    Snapshot,
    /// A cue the swarm fired itself to measure fan-out (an ad-hoc `cta`).
    BenchCue,
    /// A `reveal` cue: claims open on its SKU.
    Reveal,
    /// Any other cue.
    Cue,
    /// A `state` broadcast; `closed` ends the run for the viewer.
    State {
        closed: bool,
    },
    /// `stock`, `leaderboard`, `viewers`: the coalesced figures.
    Figures,
    ClaimResult,
    /// A `chat` broadcast (a tick's messages).
    Chat,
    ChatResult,
    Error,
    Other,
}

impl Kind {
    /// The short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Welcome => "welcome",
            Kind::Snapshot => "snapshot",
            Kind::BenchCue => "bench_cue",
            Kind::Reveal => "reveal",
            Kind::Cue => "cue",
            Kind::State { .. } => "state",
            Kind::Figures => "figures",
            Kind::ClaimResult => "claim_result",
            Kind::Chat => "chat",
            Kind::ChatResult => "chat_result",
            Kind::Error => "error",
            Kind::Other => "other",
        }
    }
}

/// One frame, read lightly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: Kind,
    pub seq: Option<u64>,
    pub ts: Option<u64>,
    pub ok: Option<bool>,
    /// `claim_result`: the refusal's reason; `error`: the error code.
    pub reason: Option<Cow<'a, str>>,
    /// `reveal`: the SKU it opens.
    pub sku: Option<Cow<'a, str>>,
    /// `chat`: how many messages it carries.
    pub messages: usize,
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    ts: Option<serde_json::Value>,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    state: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    cue: Option<RawCue<'a>>,
    #[serde(default)]
    messages: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct RawCue<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    sku: Option<Cow<'a, str>>,
}

/// Reads one text frame; `None` when it is not a JSON object with a string `type`.
pub fn parse(text: &str) -> Option<Frame<'_>> {
    let raw: Raw<'_> = serde_json::from_str(text).ok()?;
    let mut sku = None;
    let kind = match raw.kind.as_ref() {
        "welcome" => Kind::Welcome,
        "snapshot" => Kind::Snapshot,
        "cue" => match raw.cue {
            Some(cue) if cue.kind == "cta" => Kind::BenchCue,
            Some(cue) if cue.kind == "reveal" => {
                sku = cue.sku;
                Kind::Reveal
            }
            _ => Kind::Cue,
        },
        "state" => Kind::State {
            closed: raw.state.as_deref() == Some("closed"),
        },
        "stock" | "leaderboard" | "viewers" => Kind::Figures,
        "claim_result" => Kind::ClaimResult,
        "chat" => Kind::Chat,
        "chat_result" => Kind::ChatResult,
        "error" => Kind::Error,
        _ => Kind::Other,
    };
    let reason = match kind {
        Kind::Error => raw.code,
        _ => raw.reason,
    };
    Some(Frame {
        kind,
        seq: raw.seq,
        // `pong` echoes the client's `ts` (any JSON); broadcasts carry a number.
        ts: raw.ts.and_then(|v| v.as_u64()),
        ok: raw.ok,
        reason,
        sku,
        messages: raw.messages.map_or(0, |m| m.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dropwire_core::protocol::ServerMsg;
    use dropwire_core::{Cue, CueType, DropState};

    #[test]
    fn reads_what_the_server_writes() {
        let mut cta = Cue::new(0, CueType::Cta);
        cta.title = Some("say \"hi\"".into());
        let text = serde_json::to_string(&ServerMsg::Cue {
            seq: 12,
            ts: 1_700_000_000_123,
            index: None,
            cue: cta,
            at_ms: 1_700_000_000_123,
            item: None,
            public_ms: None,
            next_cue: None,
        })
        .unwrap();
        let f = parse(&text).unwrap();
        assert_eq!(f.kind, Kind::BenchCue);
        assert_eq!(f.seq, Some(12));
        assert_eq!(f.ts, Some(1_700_000_000_123));

        let mut reveal = Cue::new(90, CueType::Reveal);
        reveal.sku = Some("mug-350".into());
        let text = serde_json::to_string(&ServerMsg::Cue {
            seq: 13,
            ts: 5,
            index: Some(1),
            cue: reveal,
            at_ms: 5,
            item: None,
            public_ms: None,
            next_cue: None,
        })
        .unwrap();
        let f = parse(&text).unwrap();
        assert_eq!(f.kind, Kind::Reveal);
        assert_eq!(f.sku.as_deref(), Some("mug-350"));

        let text = serde_json::to_string(&ServerMsg::State {
            seq: 14,
            ts: 6,
            state: DropState::Closed,
            elapsed_s: 1.5,
            next_cue: None,
        })
        .unwrap();
        assert_eq!(parse(&text).unwrap().kind, Kind::State { closed: true });

        let text = serde_json::to_string(&ServerMsg::ClaimResult {
            rid: "r1".into(),
            ok: false,
            code: None,
            sku: None,
            hold_until_ms: None,
            reason: Some("sold_out".into()),
            opens_at_ms: None,
            follow_up: None,
        })
        .unwrap();
        let f = parse(&text).unwrap();
        assert_eq!(f.kind, Kind::ClaimResult);
        assert_eq!(f.ok, Some(false));
        assert_eq!(f.reason.as_deref(), Some("sold_out"));
        assert_eq!(f.seq, None);
    }

    #[test]
    fn odd_frames_are_not_errors() {
        assert_eq!(parse("{nope"), None);
        assert_eq!(parse("[1]"), None);
        let f = parse(r#"{"type":"pong","ts":"abc","server_ms":3}"#).unwrap();
        assert_eq!((f.kind, f.ts), (Kind::Other, None));
        let f = parse(r#"{"type":"error","code":"rate_limited","message":"slow down"}"#).unwrap();
        assert_eq!(f.kind, Kind::Error);
        assert_eq!(f.reason.as_deref(), Some("rate_limited"));
    }

    #[test]
    fn reads_chat_frames() {
        let f = parse(
            r#"{"type":"chat","seq":9,"ts":5,"messages":[{"id":"a","author":"ana","text":"hi","at_ms":5,"host":false},{"id":"b","author":"bo","text":"yo","at_ms":5,"host":false}]}"#,
        )
        .unwrap();
        assert_eq!(
            (f.kind, f.seq, f.ts, f.messages),
            (Kind::Chat, Some(9), Some(5), 2)
        );
        let f = parse(r#"{"type":"chat_result","rid":"m1-0","ok":false,"reason":"slow_mode","retry_after_ms":900}"#).unwrap();
        assert_eq!((f.kind, f.ok), (Kind::ChatResult, Some(false)));
        assert_eq!(f.reason.as_deref(), Some("slow_mode"));
    }
}
