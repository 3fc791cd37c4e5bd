//! The test harness: a real server on an ephemeral port, real HTTP and WebSocket clients.

pub mod hooks;
pub mod receiver;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dropwire_server::{AppState, Options};
use dropwire_store::{MemoryStore, MemoryStoreConfig, Store};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ADMIN: &str = "test-admin-token-0123456789";

/// Frames are awaited at most this long before a test fails (a hang guard, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct TestServer {
    /// Keeps the ledger's directory while the server lives.
    ledger_dir: Option<tempfile::TempDir>,
    pub base: String,
    pub ws_base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server on the in-memory store (no journal), with an embedded ledger in a temp dir.
    pub async fn start() -> Result<TestServer> {
        Self::with_ledger(memory_options()?).await
    }

    /// A server over a journaled store in `dir`, its ledger beside it (as `dropwire serve`).
    pub async fn on_dir(dir: &std::path::Path) -> Result<TestServer> {
        let store = MemoryStore::open(MemoryStoreConfig {
            data_dir: Some(dir.to_owned()),
            fsync: true,
            ..MemoryStoreConfig::default()
        })?;
        let mut opts = Options::new(Arc::new(store), ADMIN.into());
        let url = format!("sqlite:{}", dir.join("ledger.sqlite3").display());
        opts.ledger = Some(dropwire_funnel::Ledger::open(&url).await?);
        Self::with(opts).await
    }

    /// `opts` with an embedded ledger of its own (in a temp dir removed with the server).
    pub async fn with_ledger(mut opts: Options) -> Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite:{}", dir.path().join("ledger.sqlite3").display());
        opts.ledger = Some(dropwire_funnel::Ledger::open(&url).await?);
        let mut server = Self::with(opts).await?;
        server.ledger_dir = Some(dir);
        Ok(server)
    }

    pub async fn with(opts: Options) -> Result<TestServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = AppState::start(opts).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(dropwire_server::serve(
            listener,
            state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(TestServer {
            ledger_dir: None,
            base: format!("http://{addr}"),
            ws_base: format!("ws://{addr}"),
            state,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.state.store)
    }

    /// Graceful stop: close frames, drain, return.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    pub async fn get(&self, path: &str) -> Result<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// POST that must succeed; returns the body.
    pub async fn ok(&self, path: &str, body: Value) -> Result<Value> {
        let (status, body) = self.post(path, body).await?;
        if !(200..300).contains(&status) {
            bail!("POST {path} → {status} {body}");
        }
        Ok(body)
    }

    pub async fn create(&self, spec: Value) -> Result<String> {
        let body = self.ok("/api/v1/drops", spec).await?;
        Ok(body["id"]
            .as_str()
            .context("created drop has an id")?
            .to_owned())
    }

    /// Mints a viewer token (as the admin, so no rate limit applies).
    pub async fn mint(&self, handle: &str) -> Result<String> {
        let body = self
            .ok("/api/v1/viewers", json!({"handle": handle}))
            .await?;
        Ok(body["token"].as_str().context("token")?.to_owned())
    }

    pub async fn connect(&self, drop: &str) -> Result<Viewer> {
        Viewer::open(&self.ws_base, drop).await
    }

    /// Starts the drop and fires its cue 1 (the reveal of `mug` in [`far_script`]).
    pub async fn start_and_reveal(&self, drop: &str) -> Result<()> {
        self.ok(&format!("/api/v1/drops/{drop}/start"), json!({}))
            .await?;
        self.ok(&format!("/api/v1/drops/{drop}/fire"), json!({"cue": 1}))
            .await?;
        Ok(())
    }

    /// A viewer with a token for `handle`, joined and past its snapshot.
    pub async fn watch_as(&self, drop: &str, handle: &str) -> Result<Viewer> {
        let token = self.mint(handle).await?;
        let (mut v, _) = self.join(drop, Some(&token), None).await?;
        v.next_of("snapshot").await?;
        Ok(v)
    }

    /// Connects and completes hello → welcome (+ snapshot or missed frames are left to read).
    pub async fn join(
        &self,
        drop: &str,
        token: Option<&str>,
        since: Option<u64>,
    ) -> Result<(Viewer, Value)> {
        let mut v = self.connect(drop).await?;
        let mut hello = json!({"type": "hello"});
        if let Some(t) = token {
            hello["token"] = json!(t);
        }
        if let Some(s) = since {
            hello["since"] = json!(s);
        }
        v.send(hello).await?;
        let welcome = v.next_of("welcome").await?;
        v.last_seq = welcome["seq"].as_u64();
        Ok((v, welcome))
    }
}

/// One hub node on `redis`, in this process, with its end of the cross-node bus.
pub async fn redis_node(
    redis: &dropwire_store::testing::RedisServer,
    name: &str,
    clock: dropwire_server::clock::Clock,
) -> Result<TestServer> {
    TestServer::with(redis_options(redis, name, clock).await?).await
}

/// The options of a hub node on `redis` (no ledger), for tests to adjust.
pub async fn redis_options(
    redis: &dropwire_store::testing::RedisServer,
    name: &str,
    clock: dropwire_server::clock::Clock,
) -> Result<Options> {
    use dropwire_store::{RedisBus, RedisStore, RedisStoreConfig};
    let mut config = RedisStoreConfig::new(redis.url());
    // A loaded test machine (parallel tests, many redis-servers with `appendfsync always`)
    // can stall one operation past the 500 ms production default; a test about timeouts
    // sets its own.
    config.op_timeout = std::time::Duration::from_secs(5);
    let store = RedisStore::connect(config).await?;
    let bus = RedisBus::open(&store, name.into()).await?;
    let mut opts = Options::new(Arc::new(store), ADMIN.into());
    opts.bus = Some(Arc::new(bus));
    opts.clock = clock;
    Ok(opts)
}

/// The options of `dropwire serve` over an in-memory store, for tests to adjust.
pub fn memory_options() -> Result<Options> {
    let store = MemoryStore::open(MemoryStoreConfig {
        data_dir: None,
        fsync: false,
        ..MemoryStoreConfig::default()
    })?;
    Ok(Options::new(Arc::new(store), ADMIN.into()))
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A script with the speckled mugs inventory and the given cues.
/// Creates the drop `id` of `spec` (checked) straight in the state's store, as the maker
/// `default`, and returns its hub: for tests that drive a hub on tokio's paused clock.
pub async fn hub_of(
    state: &AppState,
    id: &str,
    spec: dropwire_core::DropSpec,
) -> Result<Arc<dropwire_server::hub::DropHub>> {
    spec.validate()?;
    let id = dropwire_core::DropId::parse(id)?;
    let record = dropwire_core::DropRecord {
        id: id.clone(),
        spec,
        obs_key: "k".into(),
        created_ms: state.clock.now_ms(),
        log: vec![],
        recipe: None,
        maker: "default".into(),
    };
    state.store.create_drop(record).await?;
    Ok(state.hub(&id).await?)
}

pub fn drop_spec(id: &str, stock: u32, limit: u32, cues: Value) -> Value {
    json!({
        "id": id,
        "title": "Speckled mugs, batch 12",
        "kind": "drop",
        "currency": "EUR",
        "hold_s": 900,
        "inventory": [
            {"sku": "mug", "name": "Speckled mug", "price_cents": 3400, "stock": stock, "per_viewer_limit": limit},
            {"sku": "jug", "name": "Milk jug", "price_cents": 2900, "stock": 5, "per_viewer_limit": 1}
        ],
        "script": {"duration_s": 3600, "cues": cues}
    })
}

/// Intro at 0; a reveal of `mug` far in the future (fire it with `{"cue": 1}`); close at the end.
pub fn far_script() -> Value {
    json!([
        {"at_s": 0, "type": "intro", "title": "Welcome to the studio"},
        {"at_s": 3000, "type": "reveal", "sku": "mug", "title": "Batch 12 is here"},
        {"at_s": 3600, "type": "close"}
    ])
}

pub struct Viewer {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Broadcasts received, in order.
    pub seen: Vec<Value>,
    pub last_seq: Option<u64>,
}

impl Viewer {
    /// A socket to the drop's WebSocket on the server at `ws_base` (nothing said yet).
    pub async fn open(ws_base: &str, drop: &str) -> Result<Viewer> {
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("{ws_base}/ws/v1/drops/{drop}")).await?;
        Ok(Viewer {
            ws,
            seen: Vec::new(),
            last_seq: None,
        })
    }

    pub async fn send(&mut self, v: Value) -> Result<()> {
        self.ws.send(Message::text(v.to_string())).await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, text: String) -> Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// The next text frame as JSON; broadcasts are checked for gapless `seq` and recorded.
    pub async fn next(&mut self) -> Result<Value> {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .context("no frame in time")?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    if v["type"] == "snapshot" {
                        self.last_seq = v["seq"].as_u64();
                    } else if let (Some(seq), true) = (v["seq"].as_u64(), v.get("ts").is_some()) {
                        if let Some(last) = self.last_seq
                            && seq != last + 1
                        {
                            bail!("gap: seq {seq} after {last} ({v})");
                        }
                        self.last_seq = Some(seq);
                        self.seen.push(v.clone());
                    }
                    return Ok(v);
                }
                Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error: {e}"),
                None => bail!("socket ended"),
            }
        }
    }

    /// Reads until a frame of `kind` (recording broadcasts on the way).
    pub async fn next_of(&mut self, kind: &str) -> Result<Value> {
        loop {
            let v = self.next().await?;
            if v["type"] == kind {
                return Ok(v);
            }
        }
    }

    /// Reads until a `cue` broadcast whose cue has type `cue_type`.
    pub async fn cue(&mut self, cue_type: &str) -> Result<Value> {
        loop {
            let v = self.next_of("cue").await?;
            if v["cue"]["type"] == cue_type {
                return Ok(v);
            }
        }
    }

    /// Reads until a `state` broadcast with `state`.
    pub async fn state(&mut self, state: &str) -> Result<Value> {
        loop {
            let v = self.next_of("state").await?;
            if v["state"] == state {
                return Ok(v);
            }
        }
    }

    /// Reads until the socket closes; returns the close code, if a close frame came.
    pub async fn closed(&mut self) -> Result<Option<u16>> {
        loop {
            match tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .context("socket stayed open")?
            {
                Some(Ok(Message::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ok(None),
            }
        }
    }

    pub async fn claim(&mut self, sku: &str, rid: &str) -> Result<Value> {
        self.send(json!({"type": "claim", "sku": sku, "rid": rid}))
            .await?;
        self.next_of("claim_result").await
    }
}

/// The real `dropwire` binary in its own process (so a test can SIGKILL it).
pub struct Spawned {
    pub child: Child,
    pub base: String,
    /// The lines the hub printed at start, up to the admin token.
    pub banner: Vec<String>,
}

impl Spawned {
    /// `dropwire serve` on an ephemeral port with `args` added; returns once it listens.
    pub fn serve(args: &[&std::ffi::OsStr]) -> Result<Spawned> {
        Self::serve_with_env(args, &[])
    }

    /// The same with `env` added to the hub's environment.
    pub fn serve_with_env(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Result<Spawned> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dropwire"))
            .args(["serve", "--bind", "127.0.0.1:0", "--admin-token", ADMIN])
            .args(args)
            .env("DROPWIRE_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let mut base = None;
        // The banner is one write, from "listening on" to the admin token.
        while !banner
            .last()
            .is_some_and(|l: &String| l.starts_with("admin token:"))
        {
            let line = lines.next().context("the hub exited before listening")??;
            if let Some(addr) = line.split("listening on ").nth(1) {
                base = Some(addr.trim().to_owned());
            }
            banner.push(line);
        }
        let base = base.context("the banner names no address")?;
        // Keep reading, so the hub never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Spawned {
            child,
            base,
            banner,
        })
    }

    /// On the embedded store, journaled in `dir`.
    pub fn on_dir(dir: &std::path::Path) -> Result<Spawned> {
        Self::serve(&["--data-dir".as_ref(), dir.as_os_str()])
    }

    pub fn ws_base(&self) -> String {
        self.base.replace("http://", "ws://")
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Units of `sku` left, as a `stock` broadcast says.
pub fn left_of(frame: &Value, sku: &str) -> Option<u64> {
    frame["items"]
        .as_array()?
        .iter()
        .find(|i| i["sku"] == sku)?["left"]
        .as_u64()
}

/// Reads until a `stock` broadcast says `sku` is sold out; returns every count of `sku`
/// the viewer was told, in order. A count read while the viewer waited for the answer to
/// its own claim is in `seen` already (broadcasts are not held back for a reply), so the
/// wait starts from there.
pub async fn until_sold_out(v: &mut Viewer, sku: &str) -> Result<Vec<u64>> {
    let counts = |v: &Viewer| -> Vec<u64> {
        v.seen
            .iter()
            .filter(|f| f["type"] == "stock")
            .filter_map(|f| left_of(f, sku))
            .collect()
    };
    while counts(v).last() != Some(&0) {
        v.next_of("stock").await?;
    }
    Ok(counts(v))
}

/// Claim results counted: (granted, distinct codes, sold out, limit reached).
pub fn tally(results: &[Value]) -> (usize, std::collections::HashSet<String>, usize, usize) {
    let ok = results.iter().filter(|r| r["ok"] == true).count();
    let codes = results
        .iter()
        .filter_map(|r| r["code"].as_str().map(str::to_owned))
        .collect();
    let sold_out = results.iter().filter(|r| r["reason"] == "sold_out").count();
    let limit = results
        .iter()
        .filter(|r| r["reason"] == "limit_reached")
        .count();
    (ok, codes, sold_out, limit)
}

/// Every viewer claims one `sku` at once, viewer `i` with rid `r{i}`; the answers in order.
pub async fn claim_all(viewers: &mut [Viewer], sku: &str) -> Result<Vec<Value>> {
    // A viewer told `unavailable` (the store timed out on a loaded machine) asks again
    // with the same rid, as a client should; the answer it then gets is the decision.
    let asks = viewers.iter_mut().enumerate().map(|(i, v)| async move {
        let rid = format!("r{i}");
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        loop {
            let answer = v.claim(sku, &rid).await?;
            if answer["reason"] != "unavailable" || tokio::time::Instant::now() >= deadline {
                return Ok::<_, anyhow::Error>(answer);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    futures_util::future::try_join_all(asks).await
}

/// How long [`eventually`] waits for its condition: generous, for a loaded 2-core machine
/// (a hang guard, not a timing assertion).
pub const EVENTUALLY: Duration = Duration::from_secs(90);

/// Polls `check` every 50 ms until it answers true; fails after [`EVENTUALLY`] with `what`.
pub async fn eventually<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not so after {EVENTUALLY:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[allow(unused_imports)] // only the binaries with heavy tests use it
pub use dropwire_store::testing::heavy;
