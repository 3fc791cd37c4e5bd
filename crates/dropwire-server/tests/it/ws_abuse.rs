//! WebSocket protocol abuse over raw TCP (the Autobahn suite cannot run here): hand-built
//! handshakes and frames, each answered as RFC 6455 says, at bounded cost, while a
//! well-behaved viewer of the same drop keeps getting its broadcasts. The answers are the
//! "Protocol errors" table of docs/api.md.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::{PATIENCE, TestServer, Viewer, drop_spec, far_script};
use dropwire_core::protocol::MAX_CLIENT_FRAME;
use dropwire_server::Options;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV2: u8 = 0x20;
const RSV3: u8 = 0x10;
const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// The server's limit on a frame and on a message (`max_frame_size`, `max_message_size`).
const LIMIT: usize = 4 * MAX_CLIENT_FRAME;
const HELLO: &[u8] = br#"{"type":"hello"}"#;

/// A frame's header: `first` is FIN, RSV and opcode; `len` in the 7, 16 or 64-bit form.
fn header(first: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![first];
    match len {
        0..=125 => out.push(bit | len as u8),
        126..=0xffff => {
            out.push(bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole frame, masked with `mask` when given.
fn frame(first: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = header(first, mask, payload.len() as u64);
    let key = mask.unwrap_or_default();
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A masked frame, as a client must send.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    frame(first, Some(MASK), payload)
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// How the server answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// A close frame with this code (`None`: an empty close frame), then the TCP close.
    Close(Option<u16>),
    /// The TCP connection closed with no close frame.
    Dropped,
}

struct Frame {
    opcode: u8,
    payload: Vec<u8>,
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's accept value for [`KEY`].
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A client on a raw TCP connection.
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Sends the upgrade request for `drop` (with `extra` header lines); returns the
    /// response head.
    async fn handshake(server: &TestServer, drop: &str, extra: &str) -> Result<(Raw, String)> {
        let addr = server.base.trim_start_matches("http://");
        let mut raw = Raw {
            tcp: TcpStream::connect(addr).await?,
            buf: Vec::new(),
        };
        let request = format!(
            "GET /ws/v1/drops/{drop} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
             {extra}\r\n"
        );
        raw.send(request.as_bytes()).await?;
        loop {
            if let Some(end) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(raw.buf.drain(..end + 4).collect())?;
                return Ok((raw, head.to_ascii_lowercase()));
            }
            if !raw.fill().await? {
                bail!("the server closed during the handshake");
            }
        }
    }

    /// An upgraded connection to `drop` (its accept key checked), nothing said yet.
    async fn open(server: &TestServer, drop: &str) -> Result<Raw> {
        let (raw, head) = Self::handshake(server, drop, "").await?;
        assert!(head.starts_with("http/1.1 101 "), "{head}");
        let accept = format!("sec-websocket-accept: {}", ACCEPT.to_ascii_lowercase());
        assert!(head.contains(&accept), "{head}");
        Ok(raw)
    }

    /// An upgraded connection past hello, welcome and snapshot.
    async fn joined(server: &TestServer, drop: &str) -> Result<Raw> {
        let mut raw = Self::open(server, drop).await?;
        raw.send(&masked(FIN | TEXT, HELLO)).await?;
        raw.text_of("welcome").await?;
        raw.text_of("snapshot").await?;
        Ok(raw)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.tcp.write_all(bytes).await?;
        Ok(())
    }

    /// Reads more bytes; false when the connection ended (EOF or reset).
    async fn fill(&mut self) -> Result<bool> {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(PATIENCE, self.tcp.read(&mut chunk))
            .await
            .context("the server neither answered nor closed")?;
        match read {
            Ok(0) | Err(_) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
        }
    }

    /// The server's next frame, or `None` when the connection ended.
    async fn frame(&mut self) -> Result<Option<Frame>> {
        loop {
            if let Some((first, len, at)) = parse_header(&self.buf)?
                && self.buf.len() >= at + len
            {
                let payload = self.buf[at..at + len].to_vec();
                self.buf.drain(..at + len);
                return Ok(Some(Frame {
                    opcode: first & 0x0f,
                    payload,
                }));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Reads until a text frame of type `kind` (skipping others); fails on a close.
    async fn text_of(&mut self, kind: &str) -> Result<String> {
        loop {
            let f = self.frame().await?.context("closed while waiting")?;
            match f.opcode {
                TEXT => {
                    let text = String::from_utf8(f.payload)?;
                    if text.contains(&format!("\"type\":\"{kind}\"")) {
                        return Ok(text);
                    }
                }
                CLOSE => bail!("closed while waiting for {kind}: {:?}", f.payload),
                _ => {}
            }
        }
    }

    /// Reads until a close frame or the end of the connection. After a close frame, echoes
    /// it (as a client should) and waits for the server to close the TCP connection.
    async fn answer(&mut self) -> Result<Answer> {
        loop {
            let Some(f) = self.frame().await? else {
                return Ok(Answer::Dropped);
            };
            if f.opcode == CLOSE {
                let code = (f.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
                // The server need not wait for the echo: it may meet a closed socket.
                let echo = masked(FIN | CLOSE, &f.payload[..f.payload.len().min(2)]);
                let _ = self.send(&echo).await;
                while self.fill().await? {}
                return Ok(Answer::Close(code));
            }
        }
    }
}

/// A server frame's (first byte, payload length, payload offset) once its header is in.
fn parse_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & 0x80 != 0 {
        bail!("the server sent a masked frame");
    }
    let (len, at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into()?), 10),
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    Ok(Some((buf[0], usize::try_from(len)?, at)))
}

/// A server with a live drop and a well-behaved viewer of it.
struct Scene {
    server: TestServer,
    id: String,
    good: Viewer,
}

impl Scene {
    async fn start() -> Result<Scene> {
        Self::with(common::memory_options()?).await
    }

    async fn with(opts: Options) -> Result<Scene> {
        let server = TestServer::with(opts).await?;
        let id = server
            .create(drop_spec("abuse", 40, 1, far_script()))
            .await?;
        server
            .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
            .await?;
        let good = server.watch_as(&id, "good").await?;
        Ok(Scene { server, id, good })
    }

    /// The abuser's answer on a fresh connection past its hello: it sends `bytes`.
    async fn abuse(&self, bytes: &[u8]) -> Result<Answer> {
        let mut raw = Raw::joined(&self.server, &self.id).await?;
        raw.send(bytes).await?;
        raw.answer().await
    }

    /// After the abuse: the abusers' connections are gone, the good viewer gets an ad-hoc
    /// cue, `/healthz` answers, and a graceful stop still closes the viewer with 1001.
    async fn still_serving(mut self) -> Result<()> {
        let state = self.server.state.clone();
        common::eventually("only the good viewer is connected", || {
            let open = state.connections.load(Ordering::Acquire);
            async move { Ok(open == 1) }
        })
        .await?;
        let cue = json!({"cue": {"type": "cta", "title": "still here"}});
        let path = format!("/api/v1/drops/{}/fire", self.id);
        self.server.ok(&path, cue).await?;
        assert_eq!(self.good.cue("cta").await?["cue"]["title"], "still here");
        let (status, body) = self.server.get("/healthz").await?;
        assert_eq!((status, body), (200, json!({"status": "ok"})));
        let (stopped, code) = tokio::join!(self.server.stop(), self.good.closed());
        stopped?;
        assert_eq!(code?, Some(1001));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmasked_client_frame_is_a_protocol_error() -> Result<()> {
    let scene = Scene::start().await?;
    let unmasked = frame(FIN | TEXT, None, br#"{"type":"ping"}"#);
    assert_eq!(scene.abuse(&unmasked).await?, Answer::Close(Some(1002)));
    // Before the hello too.
    let mut raw = Raw::open(&scene.server, &scene.id).await?;
    raw.send(&frame(FIN | TEXT, None, HELLO)).await?;
    assert_eq!(raw.answer().await?, Answer::Close(Some(1002)));
    scene.still_serving().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_is_not_utf8_is_closed_with_1007() -> Result<()> {
    let scene = Scene::start().await?;
    let one_frame = masked(FIN | TEXT, &[b'{', 0xff, 0xfe, b'}']);
    assert_eq!(scene.abuse(&one_frame).await?, Answer::Close(Some(1007)));
    // A euro sign cut after two of its three bytes, then not continued.
    let mut split = masked(TEXT, &[b'"', 0xe2, 0x82]);
    split.extend(masked(FIN | CONT, b"x\""));
    assert_eq!(scene.abuse(&split).await?, Answer::Close(Some(1007)));
    // A close frame's reason is UTF-8 too.
    let close = masked(FIN | CLOSE, &close_payload(1000, &[0xc3, 0x28]));
    assert_eq!(scene.abuse(&close).await?, Answer::Close(Some(1007)));
    scene.still_serving().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_limit_is_refused_from_its_header() -> Result<()> {
    let scene = Scene::start().await?;
    // A header claiming 16 MiB and 4 KiB of it: the close comes without the rest, so the
    // server decided from the header, neither reading nor buffering the payload.
    let mut huge = header(FIN | TEXT, Some(MASK), 16 << 20);
    huge.extend(vec![b'a'; 4096]);
    assert_eq!(scene.abuse(&huge).await?, Answer::Close(Some(1009)));
    // One byte over the limit, likewise.
    let mut over = header(FIN | TEXT, Some(MASK), LIMIT as u64 + 1);
    over.extend(vec![b'a'; 1024]);
    assert_eq!(scene.abuse(&over).await?, Answer::Close(Some(1009)));
    // At the limit, the frame is read, and refused by the protocol (16 KiB), not the socket.
    let mut raw = Raw::joined(&scene.server, &scene.id).await?;
    raw.send(&masked(FIN | TEXT, &vec![b' '; LIMIT])).await?;
    assert!(
        raw.text_of("error")
            .await?
            .contains("\"code\":\"too_large\"")
    );
    raw.send(&masked(FIN | CLOSE, &close_payload(1000, b"")))
        .await?;
    assert_eq!(raw.answer().await?, Answer::Close(Some(1000)));
    scene.still_serving().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_many_fragments_over_the_limit_is_refused() -> Result<()> {
    let scene = Scene::start().await?;
    let kib = vec![b' '; 1024];
    // 65 fragments of 1 KiB, the last still not final: refused as the total passes 64 KiB
    // (the last fragment sent is the one that passes, so nothing is left unread).
    let mut many = masked(TEXT, &kib);
    for _ in 0..64 {
        many.extend(masked(CONT, &kib));
    }
    assert_eq!(LIMIT, 64 * 1024);
    assert_eq!(scene.abuse(&many).await?, Answer::Close(Some(1009)));
    // 64 of them, the last final: a 64 KiB message, read, and refused by the protocol.
    let mut raw = Raw::joined(&scene.server, &scene.id).await?;
    let mut at_limit = masked(TEXT, &kib);
    for i in 1..64 {
        at_limit.extend(masked(if i == 63 { FIN } else { CONT }, &kib));
    }
    raw.send(&at_limit).await?;
    assert!(
        raw.text_of("error")
            .await?
            .contains("\"code\":\"too_large\"")
    );
    drop(raw);
    // A hello in three fragments with a ping between them (RFC 6455 §5.4) is a hello.
    let mut raw = Raw::open(&scene.server, &scene.id).await?;
    let mut hello = masked(TEXT, &HELLO[..5]);
    hello.extend(masked(CONT, &HELLO[5..10]));
    hello.extend(masked(FIN | PING, b"between"));
    hello.extend(masked(FIN | CONT, &HELLO[10..]));
    raw.send(&hello).await?;
    let pong = raw.frame().await?.context("a pong")?;
    assert_eq!((pong.opcode, pong.payload), (PONG, b"between".to_vec()));
    raw.text_of("welcome").await?;
    drop(raw);
    scene.still_serving().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_or_oversized_control_frames_are_protocol_errors() -> Result<()> {
    let scene = Scene::start().await?;
    let fragmented_ping = masked(PING, b"x");
    assert_eq!(
        scene.abuse(&fragmented_ping).await?,
        Answer::Close(Some(1002))
    );
    let big_ping = masked(FIN | PING, &[b'x'; 126]);
    assert_eq!(scene.abuse(&big_ping).await?, Answer::Close(Some(1002)));
    let big_close = masked(FIN | CLOSE, &close_payload(1000, &[b'x'; 124]));
    assert_eq!(scene.abuse(&big_close).await?, Answer::Close(Some(1002)));
    // 125 bytes is allowed: the pong echoes them and the socket stays open.
    let mut raw = Raw::joined(&scene.server, &scene.id).await?;
    raw.send(&masked(FIN | PING, &[b'y'; 125])).await?;
    let pong = raw.frame().await?.context("a pong")?;
    assert_eq!((pong.opcode, pong.payload), (PONG, vec![b'y'; 125]));
    raw.send(&masked(FIN | TEXT, br#"{"type":"ping","ts":7}"#))
        .await?;
    raw.text_of("pong").await?;
    drop(raw);
    scene.still_serving().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_frames_are_checked_and_answered() -> Result<()> {
    let scene = Scene::start().await?;
    // Codes no endpoint may send (RFC 6455 §7.4): out of range, reserved, or meant only
    // for reports (1005, 1006, 1015).
    for code in [
        0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, 65535,
    ] {
        let close = masked(FIN | CLOSE, &close_payload(code, b""));
        assert_eq!(
            scene.abuse(&close).await?,
            Answer::Close(Some(1002)),
            "{code}"
        );
    }
    // A 1-byte payload cannot hold a code.
    let short = masked(FIN | CLOSE, &[0x03]);
    assert_eq!(scene.abuse(&short).await?, Answer::Close(Some(1002)));
    // A valid close is echoed: its code, and an empty close with an empty one.
    for code in [1000, 1001, 1011, 3000, 4999] {
        let close = masked(FIN | CLOSE, &close_payload(code, b"bye"));
        assert_eq!(scene.abuse(&close).await?, Answer::Close(Some(code)));
    }
    let empty = masked(FIN | CLOSE, b"");
    assert_eq!(scene.abuse(&empty).await?, Answer::Close(None));
    scene.still_serving().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_bits_opcodes_and_stray_fragments_are_protocol_errors() -> Result<()> {
    let scene = Scene::start().await?;
    let ping = br#"{"type":"ping"}"#;
    // RSV1 is what permessage-deflate would set: no extension is negotiated, so none.
    for rsv in [RSV1, RSV2, RSV3] {
        let bytes = masked(FIN | rsv | TEXT, ping);
        assert_eq!(
            scene.abuse(&bytes).await?,
            Answer::Close(Some(1002)),
            "{rsv:#x}"
        );
    }
    for opcode in [0x3, 0x7, 0xb, 0xf] {
        let bytes = masked(FIN | opcode, b"x");
        assert_eq!(
            scene.abuse(&bytes).await?,
            Answer::Close(Some(1002)),
            "{opcode:#x}"
        );
    }
    // A continuation with nothing to continue, and a new message inside a fragmented one.
    let stray = masked(FIN | CONT, ping);
    assert_eq!(scene.abuse(&stray).await?, Answer::Close(Some(1002)));
    let mut interleaved = masked(TEXT, b"{\"type\":");
    interleaved.extend(masked(FIN | TEXT, ping));
    assert_eq!(scene.abuse(&interleaved).await?, Answer::Close(Some(1002)));
    scene.still_serving().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permessage_deflate_is_not_negotiated_so_no_bomb_can_inflate() -> Result<()> {
    let scene = Scene::start().await?;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    let (mut raw, head) = Raw::handshake(&scene.server, &scene.id, offer).await?;
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(!head.contains("sec-websocket-extensions"), "{head}");
    // A compressed frame regardless (RSV1, the deflate of a hello): refused, never inflated.
    let deflated = [
        0xab, 0x56, 0x2a, 0xa9, 0x2c, 0x48, 0x55, 0xb2, 0x52, 0xca, 0x48, 0xcd, 0xc9, 0xc9, 0x57,
        0xaa, 0x05, 0x00,
    ];
    raw.send(&masked(FIN | RSV1 | TEXT, &deflated)).await?;
    assert_eq!(raw.answer().await?, Answer::Close(Some(1002)));
    scene.still_serving().await
}

/// Sends `bytes` one every 200 ms until the server closes; returns what it sent before.
async fn trickle(tcp: &mut TcpStream, bytes: impl IntoIterator<Item = u8>) -> Result<Vec<u8>> {
    let (mut rd, mut wr) = tcp.split();
    let mut bytes = bytes.into_iter();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let deadline = tokio::time::sleep(PATIENCE);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            read = rd.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return Ok(got),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            },
            _ = tick.tick() => {
                let Some(b) = bytes.next() else { continue };
                // A write refused means closed: the read then says so.
                let _ = wr.write_all(&[b]).await;
            }
            () = &mut deadline => bail!("the server kept a slow connection open {PATIENCE:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_handshake_is_cut_off() -> Result<()> {
    let mut opts = common::memory_options()?;
    opts.header_read_timeout = Duration::from_secs(1);
    let mut scene = Scene::with(opts).await?;
    // The test's own HTTP requests open a connection each, so none races the server
    // closing an idle keep-alive connection after the second.
    scene.server.http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let addr = scene.server.base.trim_start_matches("http://").to_owned();
    let upgrade = format!(
        "GET /ws/v1/drops/{} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nX-Slow: ",
        scene.id
    );
    // Headers trickled a byte at a time, never finished: closed, with no response.
    let mut slow = TcpStream::connect(&addr).await?;
    let endless = upgrade
        .clone()
        .into_bytes()
        .into_iter()
        .chain(std::iter::repeat(b'a'));
    assert_eq!(trickle(&mut slow, endless).await?, b"");
    // A connection that sends nothing at all.
    let mut silent = TcpStream::connect(&addr).await?;
    assert_eq!(trickle(&mut silent, []).await?, b"");
    // A finished request, then a second one trickled on the same connection.
    let mut kept = TcpStream::connect(&addr).await?;
    let healthz = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    kept.write_all(healthz.as_bytes()).await?;
    let got = String::from_utf8(trickle(&mut kept, upgrade.into_bytes()).await?)?;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert_eq!(got.matches("HTTP/1.1").count(), 1, "{got}");
    // The good viewer, connected far longer than the header timeout, is untouched.
    scene.still_serving().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_never_says_hello_is_closed_with_4408() -> Result<()> {
    // Long enough for the good viewer's hello on a loaded machine.
    let mut opts = common::memory_options()?;
    opts.hello_timeout = Duration::from_secs(5);
    let scene = Scene::with(opts).await?;
    let mut raw = Raw::open(&scene.server, &scene.id).await?;
    // A ping is answered, but is not a hello.
    raw.send(&masked(FIN | PING, b"are you there")).await?;
    let pong = raw.frame().await?.context("a pong")?;
    assert_eq!(
        (pong.opcode, pong.payload),
        (PONG, b"are you there".to_vec())
    );
    assert!(
        raw.text_of("error")
            .await?
            .contains("\"code\":\"hello_timeout\"")
    );
    assert_eq!(raw.answer().await?, Answer::Close(Some(4408)));
    scene.still_serving().await
}
