//! The launch calendar: `GET /api/v1/calendar` (public) lists the upcoming drops in order of
//! their start, and `GET /calendar.ics` is the same list as RFC 5545, which a stock parser
//! (the `icalendar` crate) reads back: titles unescaped, starts in UTC, a stable UID. A
//! co-op's feed (`GET /coops/{id}/calendar.ics`) parses the same way.

use crate::common;

use anyhow::{Context, Result};
use common::{TestServer, drop_spec, far_script};
use dropwire_core::StartsAt;
use icalendar::parser::{Component, read_calendar, unfold};
use serde_json::{Value, json};

const HOUR: u64 = 3_600_000;

/// A title that needs escaping and folding in the feed.
const TITLE: &str = "Speckled mugs, batch 12; glaze \\ \"kiln\" — hand-thrown in the studio by the river, with jugs";

fn scheduled(id: &str, title: &str, starts_ms: u64, kind: &str) -> Value {
    let mut spec = drop_spec(id, 5, 1, far_script());
    spec["title"] = json!(title);
    spec["kind"] = json!(kind);
    spec["starts_at"] = json!(StartsAt(starts_ms).to_rfc3339());
    spec
}

fn prop(event: &Component<'_>, name: &str) -> Result<String> {
    Ok(event
        .find_prop(name)
        .with_context(|| format!("no {name}"))?
        .val
        .as_str()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_lists_upcoming_drops_and_its_feed_parses_as_rfc_5545() -> Result<()> {
    let server = TestServer::start().await?;
    let now = server.state.clock.now_ms() / 1000 * 1000;
    server
        .create(scheduled("mugs-12", TITLE, now + 48 * HOUR, "drop"))
        .await?;
    server
        .create(scheduled(
            "glaze-class",
            "Glazing workshop",
            now + 24 * HOUR,
            "workshop",
        ))
        .await?;
    // Not listed: no announced start; closed by hand.
    server
        .create(drop_spec("unannounced", 5, 1, far_script()))
        .await?;
    let gone = server
        .create(scheduled(
            "called-off",
            "Called off",
            now + 72 * HOUR,
            "demo",
        ))
        .await?;
    server
        .ok(&format!("/api/v1/drops/{gone}/close"), json!({}))
        .await?;
    server.state.calendar.forget();

    // Public: no token.
    let resp = server
        .http
        .get(format!("{}/api/v1/calendar", server.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await?;
    let drops = body["drops"].as_array().context("drops")?;
    let ids: Vec<&str> = drops.iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(ids, ["glaze-class", "mugs-12"], "in order of their start");
    assert_eq!(
        drops[0],
        json!({
            "id": "glaze-class", "title": "Glazing workshop", "maker": "default",
            "kind": "workshop", "starts_at": StartsAt(now + 24 * HOUR).to_rfc3339(),
            "starts_ms": now + 24 * HOUR, "duration_s": 3600, "state": "scheduled",
            "auto_start": false, "url": "/live/glaze-class"
        })
    );

    let resp = server
        .http
        .get(format!("{}/calendar.ics", server.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let host = server.base.trim_start_matches("http://").to_owned();
    let feed = resp.text().await?;
    // Every line ends in CRLF and is at most 75 octets; the long title was folded.
    assert!(feed.ends_with("\r\n"));
    let lines: Vec<&str> = feed.split_terminator("\r\n").collect();
    for line in &lines {
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "a bare line break"
        );
        assert!(line.len() <= 75, "{} octets: {line}", line.len());
    }
    assert!(
        lines.iter().any(|l| l.starts_with(' ')),
        "nothing was folded"
    );

    let unfolded = unfold(&feed);
    let calendar = read_calendar(&unfolded).map_err(|e| anyhow::anyhow!(e))?;
    assert_eq!(
        calendar
            .properties
            .iter()
            .find(|p| p.name == "VERSION")
            .map(|p| p.val.as_str()),
        Some("2.0")
    );
    let events: Vec<&Component<'_>> = calendar
        .components
        .iter()
        .filter(|c| c.name == "VEVENT")
        .collect();
    assert_eq!(events.len(), 2);
    let mugs = events[1];
    assert_eq!(prop(mugs, "SUMMARY")?, TITLE, "unescaped as written");
    assert_eq!(prop(mugs, "UID")?, format!("mugs-12@{host}"));
    // RFC 3339 in UTC, without its punctuation, is the iCalendar UTC form.
    let start = StartsAt(now + 48 * HOUR)
        .to_rfc3339()
        .replace(['-', ':'], "");
    assert_eq!(prop(mugs, "DTSTART")?, start);
    assert_eq!(prop(mugs, "DURATION")?, "PT3600S");
    assert_eq!(prop(mugs, "URL")?, format!("http://{host}/live/mugs-12"));
    assert!(prop(mugs, "DTSTAMP")?.ends_with('Z'));
    assert_eq!(prop(events[0], "SUMMARY")?, "Glazing workshop");

    // The typed reader agrees: two events, each with its UID and summary.
    let typed: icalendar::Calendar = feed.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let summaries: Vec<String> = typed
        .components
        .iter()
        .filter_map(|c| c.as_event())
        .filter_map(|e| icalendar::Component::get_summary(e).map(str::to_owned))
        .collect();
    assert_eq!(summaries, ["Glazing workshop", TITLE]);

    // The same UID on every copy of the feed.
    let again = server
        .http
        .get(format!("{}/calendar.ics", server.base))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(again, feed);

    // A co-op's feed: the drops of its makers (all `default` today), named after it, each
    // event as in the hub's feed; a co-op of other makers has none.
    crate::tenancy::make_maker(&server, "north", "North").await?;
    for (id, makers) in [("river", json!(["default"])), ("hill", json!(["north"]))] {
        let (status, _) = server
            .post(
                "/api/v1/coops",
                json!({"id": id, "name": format!("{id} studios, {TITLE}"), "makers": makers}),
            )
            .await?;
        assert_eq!(status, 201);
    }
    let resp = server
        .http
        .get(format!("{}/coops/river/calendar.ics", server.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let coop_feed = resp.text().await?;
    assert!(
        coop_feed
            .split_terminator("\r\n")
            .all(|l| l.len() <= 75 && !l.contains('\n'))
    );
    let unfolded = unfold(&coop_feed);
    let coop = read_calendar(&unfolded).map_err(|e| anyhow::anyhow!(e))?;
    let name = coop
        .properties
        .iter()
        .find(|p| p.name == "X-WR-CALNAME")
        .map(|p| p.val.as_str().to_owned());
    // The name as RFC 5545 TEXT (the parser leaves a calendar property escaped).
    let escaped = format!("river studios, {TITLE} launches")
        .replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(';', "\\;");
    assert_eq!(name, Some(escaped));
    let coop_events: Vec<&Component<'_>> = coop
        .components
        .iter()
        .filter(|c| c.name == "VEVENT")
        .collect();
    assert_eq!(coop_events.len(), 2);
    for (mine, hubs) in coop_events.iter().zip(&events) {
        for p in ["UID", "SUMMARY", "DTSTART", "DURATION", "URL"] {
            assert_eq!(prop(mine, p)?, prop(hubs, p)?, "{p}");
        }
    }
    let typed: icalendar::Calendar = coop_feed.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    assert_eq!(
        typed.components.iter().filter_map(|c| c.as_event()).count(),
        2
    );
    let hill = server
        .http
        .get(format!("{}/coops/hill/calendar.ics", server.base))
        .send()
        .await?
        .text()
        .await?;
    let hill = unfold(&hill);
    let hill = read_calendar(&hill).map_err(|e| anyhow::anyhow!(e))?;
    assert!(hill.components.iter().all(|c| c.name != "VEVENT"));
    let missing = server
        .http
        .get(format!("{}/coops/nope/calendar.ics", server.base))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_page_is_served_beside_its_feed() -> Result<()> {
    let server = TestServer::start().await?;
    let resp = server
        .http
        .get(format!("{}/calendar", server.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()?
            .contains("default-src 'self'")
    );
    let page = resp.text().await?;
    assert!(page.contains("/assets/js/calendar.js") && page.contains("/calendar.ics"));
    server.stop().await
}
