//! A viewer's text frame: `ClientMsg::parse` on any text (valid UTF-8, and any bytes read
//! lossily) never panics, refuses with one of the `error` frame's codes, and a frame it
//! accepts reads back the same once written out again.
#![no_main]

use dropwire_core::protocol::{ClientMsg, FrameError, MAX_CLIENT_FRAME, valid_visitor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => check(text),
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});

fn check(text: &str) {
    match ClientMsg::parse(text) {
        Ok(msg) => {
            assert!(text.len() <= MAX_CLIENT_FRAME);
            if let ClientMsg::Hello {
                visitor: Some(v), ..
            } = &msg
            {
                let _ = valid_visitor(v);
            }
            let again = serde_json::to_string(&msg).expect("a parsed frame serializes");
            if again.len() > MAX_CLIENT_FRAME {
                // Written out with its defaults (`"token":null`, …) a frame grows a little.
                return;
            }
            let reread = ClientMsg::parse(&again).expect("a frame written out parses again");
            // Numbers inside a ping's free-form `ts` may not survive a float round trip:
            // compare the rest exactly.
            match (&msg, &reread) {
                (ClientMsg::Ping { .. }, ClientMsg::Ping { .. }) => {}
                _ => assert_eq!(msg, reread, "{again}"),
            }
        }
        Err((kind, message)) => {
            assert!(!message.is_empty());
            assert!(matches!(
                kind.code(),
                "bad_json" | "unknown_type" | "bad_frame" | "too_large"
            ));
            assert_eq!(kind == FrameError::TooLarge, text.len() > MAX_CLIENT_FRAME);
        }
    }
}
