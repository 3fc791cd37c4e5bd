//! The launch calendar as iCalendar (RFC 5545), for calendar apps to subscribe to.
//!
//! One `VEVENT` per drop: `UID` `{drop id}@{host of the hub's base URL}` (the same for a
//! drop in every copy of the feed, so an app updates the event instead of adding one),
//! `DTSTAMP` when the drop was made, `DTSTART` in UTC, `DURATION` the script's length,
//! `SUMMARY` the title, `URL` the drop's page (waitlist, then the live overlay).
//!
//! Lines end in CRLF and are folded at 75 octets (a continuation starts with one space, and
//! a UTF-8 character is never split); text values escape `\`, `;`, `,` and newlines, and
//! lose other control characters, which RFC 5545 text cannot hold.

use std::fmt::Write as _;

use dropwire_core::DropState;

use super::CalendarEntry;

/// The longest line, in octets, without its CRLF.
const FOLD_AT: usize = 75;

/// The feed of `entries`, whose pages are under `base` (`http://host:port`, no trailing `/`).
pub fn render(entries: &[CalendarEntry], base: &str) -> String {
    render_named(entries, base, "dropwire launches")
}

/// [`render`], with the calendar's name (`X-WR-CALNAME`) given: a co-op's feed is named
/// after the co-op.
pub fn render_named(entries: &[CalendarEntry], base: &str, name: &str) -> String {
    let host = base
        .split("://")
        .nth(1)
        .unwrap_or(base)
        .split('/')
        .next()
        .unwrap_or("dropwire");
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//dropwire//launch calendar//EN",
        "CALSCALE:GREGORIAN",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ] {
        push(&mut out, line);
    }
    push(&mut out, &format!("X-WR-CALNAME:{}", text(name)));
    for e in entries {
        let url = format!("{base}{}", e.url);
        push(&mut out, "BEGIN:VEVENT");
        push(&mut out, &format!("UID:{}@{}", e.id, host));
        push(&mut out, &format!("DTSTAMP:{}", utc(e.created_ms)));
        push(&mut out, &format!("DTSTART:{}", utc(e.starts_ms)));
        push(&mut out, &format!("DURATION:PT{}S", e.duration_s));
        push(&mut out, &format!("SUMMARY:{}", text(&e.title)));
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let now = if e.state == DropState::Scheduled {
            "Join the waitlist"
        } else {
            "Live now"
        };
        push(
            &mut out,
            &format!(
                "DESCRIPTION:{}",
                text(&format!("A live {kind} by {}.\n{now}: {url}", e.maker))
            ),
        );
        push(&mut out, &format!("CATEGORIES:{}", text(&kind)));
        push(&mut out, &format!("URL:{url}"));
        push(&mut out, "STATUS:CONFIRMED");
        push(&mut out, "END:VEVENT");
    }
    push(&mut out, "END:VCALENDAR");
    out
}

/// A UTC DATE-TIME (`20261224T170000Z`) from Unix milliseconds.
fn utc(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(ms / 1000).unwrap_or(0))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A TEXT value: `\`, `;`, `,` and newlines escaped, other control characters left out.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded at [`FOLD_AT`] octets, with its CRLF.
fn push(out: &mut String, line: &str) {
    let mut room = FOLD_AT;
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > room {
            out.push_str("\r\n ");
            // The continuation's leading space is one of its 75 octets.
            room = FOLD_AT - 1;
            used = 0;
        }
        out.push(c);
        used += c.len_utf8();
    }
    let _ = write!(out, "\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_control_characters_go() {
        assert_eq!(
            text("a,b;c\\d\ne\r\nf\u{7}g\th"),
            "a\\,b\\;c\\\\d\\ne\\nfg h"
        );
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_a_character() {
        let mut out = String::new();
        let line = format!("SUMMARY:{}", "é".repeat(100));
        push(&mut out, &line);
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines.last(), Some(&""), "ends in CRLF");
        for l in &lines[..lines.len() - 1] {
            assert!(l.len() <= FOLD_AT, "{} octets: {l}", l.len());
        }
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.starts_with(' ')));
        let unfolded: String = out.trim_end().replace("\r\n ", "");
        assert_eq!(unfolded, line);
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(utc(1_798_131_600_000), "20261224T170000Z");
    }
}
