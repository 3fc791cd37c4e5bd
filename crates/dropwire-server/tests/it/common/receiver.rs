//! A real HTTP webhook receiver for the tests: answers each path by a script (statuses,
//! `Retry-After`, a delay), records every request, and counts requests in flight.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn event(&self) -> String {
        self.json()["type"].as_str().unwrap_or("").to_owned()
    }
}

/// How a path answers.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Answered in order, then `then` for ever.
    pub first: VecDeque<(u16, Option<&'static str>)>,
    pub then: u16,
    pub delay: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    scripts: HashMap<String, Script>,
    log: Vec<Received>,
    in_flight: HashMap<String, usize>,
    most_in_flight: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct Receiver {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

async fn hook(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, retry_after, delay) = {
        let mut g = inner.lock().unwrap();
        let n = g.in_flight.entry(path.clone()).or_default();
        *n += 1;
        let now = *n;
        let most = g.most_in_flight.entry(path.clone()).or_default();
        *most = (*most).max(now);
        let script = g.scripts.entry(path.clone()).or_insert_with(|| Script {
            then: 200,
            ..Default::default()
        });
        let (status, retry_after) = script.first.pop_front().unwrap_or((script.then, None));
        (status, retry_after, script.delay)
    };
    tokio::time::sleep(delay).await;
    let mut g = inner.lock().unwrap();
    *g.in_flight.entry(path.clone()).or_default() -= 1;
    g.log.push(Received {
        path,
        headers,
        body,
        at: Instant::now(),
    });
    let mut resp = StatusCode::from_u16(status)
        .unwrap_or(StatusCode::OK)
        .into_response();
    if let Some(after) = retry_after {
        resp.headers_mut()
            .insert("retry-after", after.parse().unwrap());
    }
    if status == 302 {
        resp.headers_mut()
            .insert("location", "http://127.0.0.1:9/elsewhere".parse().unwrap());
    }
    resp
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/{path}", post(hook))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    pub fn script(&self, path: &str, script: Script) {
        self.inner
            .lock()
            .unwrap()
            .scripts
            .insert(path.to_owned(), script);
    }

    /// Every request to `path` so far.
    pub fn log(&self, path: &str) -> Vec<Received> {
        self.inner
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The most requests to `path` that were in flight at once.
    pub fn most_in_flight(&self, path: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .most_in_flight
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}
