//! The floor: the simplest broadcaster this machine can run, to measure dropwire against
//! in the same minute. A bare tokio-tungstenite server with no application logic: every
//! socket gets a `welcome` after its `hello`, then the same pre-serialized bytes of each
//! broadcast, one write per viewer, through one `tokio::sync::broadcast` ring.
//!
//! For claim storms it answers each `claim` frame with a `claim_result` from one atomic
//! stock counter (no store, no journal, no limits): the floor of a claim's round trip.
//!
//! It answers just enough of dropwire's HTTP API for the swarm to drive it unchanged
//! (hand-parsed HTTP/1.1, one request per connection):
//! `POST /api/v1/drops` (→ `{"id", "floor": true}`; keeps the first inventory item),
//! `POST …/{id}/start` (no-op), `POST …/{id}/fire` with `{"cue": {…ad-hoc cue…}}` or
//! `{"cue": N}` (any index: a reveal of the kept item), `POST …/{id}/close` (a `state`
//! `closed` broadcast), `GET …/{id}/stats`, `POST /api/v1/viewers` (a dummy token). Any GET
//! that asks for a WebSocket upgrade, on any path, is a viewer.

//! The floor: the simplest broadcaster this machine can run, to measure dropwire against
//! in the same minute. Two of them, sharing the control side ([`control`]):
//!
//! - `dropwire-swarm floor`: a bare multi-threaded tokio-tungstenite server with no
//!   application logic: every socket gets a `welcome` after its `hello`, then the same
//!   pre-serialized bytes of each broadcast, one write per viewer, each viewer a task fed by
//!   one `tokio::sync::broadcast` ring;
//! - `dropwire-swarm floor --single-thread` ([`single`]): one OS thread, one epoll loop,
//!   each broadcast framed once and the same buffer written to every socket, no task and no
//!   re-encoding per viewer: the real floor of "one write per viewer".
//!
//! For claim storms both answer each `claim` frame with a `claim_result` from one atomic
//! stock counter (no store, no journal, no limits): the floor of a claim's round trip.
//! Both answer just enough of dropwire's HTTP API for the swarm to drive them unchanged
//! (see [`control`]). Any GET that asks for a WebSocket upgrade, on any path, is a viewer.

pub mod control;
pub mod single;
mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use dropwire_core::protocol::ServerMsg;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use self::control::{Broadcast, QUEUE, Stock, find, now_ms};

struct Floor {
    /// The last seq, and the sender: both under one lock so seqs go out in order.
    ring: Mutex<(u64, broadcast::Sender<Utf8Bytes>)>,
    viewers: AtomicU64,
    stock: Stock,
}

/// A mutex without poisoning: a panic while it is held is a bug the panic already reports.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Broadcast for &Floor {
    fn publish(&mut self, msg: impl FnOnce(u64, u64) -> ServerMsg) -> anyhow::Result<u64> {
        let mut ring = lock(&self.ring);
        let seq = ring.0 + 1;
        let text = serde_json::to_string(&msg(seq, now_ms()))?;
        ring.0 = seq;
        // No receivers is fine: nobody is watching yet.
        let _ = ring.1.send(Utf8Bytes::from(text));
        Ok(seq)
    }

    fn viewers(&self) -> u64 {
        self.viewers.load(Ordering::Acquire)
    }

    fn stock(&self) -> &Stock {
        &self.stock
    }
}

/// Serves until SIGTERM or Ctrl-C. Prints `listening on http://ADDR` when ready.
pub async fn serve(bind: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on --bind {bind}"))?;
    let addr = listener.local_addr()?;
    println!("dropwire-floor listening on http://{addr}");
    let floor = Arc::new(Floor {
        ring: Mutex::new((0, broadcast::channel(QUEUE).0)),
        viewers: AtomicU64::new(0),
        stock: Stock::default(),
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    eprintln!("[floor] accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let floor = Arc::clone(&floor);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Err(e) = connection(floor, stream).await {
                eprintln!("[floor] {e:#}");
            }
        });
    }
    Ok(())
}

/// Peeks at the request head: a WebSocket upgrade becomes a viewer, anything else is control.
async fn connection(floor: Arc<Floor>, stream: TcpStream) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 4096];
    let head = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.peek(&mut buf))
            .await
            .context("no request within 10 s")??;
        if n == 0 {
            return Ok(());
        }
        if let Some(end) = find(&buf[..n], b"\r\n\r\n") {
            break end;
        }
        if n == buf.len() {
            anyhow::bail!("request head longer than {} bytes", buf.len());
        }
        // Not all here yet: peek returns at once while the rest is in flight.
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    if control::is_upgrade(&buf[..head]) {
        viewer(floor, stream).await
    } else {
        control(floor, stream).await
    }
}

async fn viewer(floor: Arc<Floor>, stream: TcpStream) -> anyhow::Result<()> {
    let config = WebSocketConfig::default()
        .read_buffer_size(2048)
        .write_buffer_size(0)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024));
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(config))
        .await
        .context("websocket handshake")?;
    // The hello (ignored), within 10 s.
    let hello = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    if !matches!(hello, Ok(Some(Ok(Message::Text(_))))) {
        return Ok(());
    }
    let (seq, mut rx) = {
        let ring = lock(&floor.ring);
        (ring.0, ring.1.subscribe())
    };
    ws.send(Message::text(serde_json::to_string(&control::welcome(
        seq,
    ))?))
    .await?;
    floor.viewers.fetch_add(1, Ordering::AcqRel);
    let result = async {
        loop {
            tokio::select! {
                frame = rx.recv() => match frame {
                    Ok(bytes) => ws.send(Message::Text(bytes)).await?,
                    // Fell behind or shutting down: drop the viewer.
                    Err(_) => return anyhow::Ok(()),
                },
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(answer) = floor.stock.claim(&text) {
                            ws.send(Message::text(answer)).await?;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    .await;
    floor.viewers.fetch_sub(1, Ordering::AcqRel);
    result
}

async fn control(floor: Arc<Floor>, mut stream: TcpStream) -> anyhow::Result<()> {
    let mut req = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let request = loop {
        if let Some(request) = control::parse_request(&req)? {
            break request;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .context("request timed out")??;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&chunk[..n]);
    };
    let resp = control::respond(&mut &*floor, &request)?;
    stream.write_all(&resp).await?;
    stream.shutdown().await?;
    Ok(())
}
