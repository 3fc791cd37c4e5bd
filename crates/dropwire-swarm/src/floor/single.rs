//! The single-thread floor (`dropwire-swarm floor --single-thread`): the real floor of "one
//! write per viewer". One OS thread runs one epoll loop (mio, edge-triggered) that owns the
//! listener and every socket: no runtime, no task per viewer, no channel. Each broadcast is
//! serialized and framed ONCE (header + payload; server frames are unmasked) into one
//! shared buffer, and that same buffer is written to every viewer socket in turn with one
//! non-blocking `write`. A socket that takes only part of it keeps the buffer (a reference,
//! not a copy) and its write offset in its [`Outbox`], flushed when epoll says it is
//! writable again; a viewer with [`QUEUE`] frames waiting is dropped, as the
//! multi-threaded floor drops one that falls [`QUEUE`] broadcasts behind.
//!
//! Viewers get the same upgrade, `hello` → `welcome` and `claim` → `claim_result` as from
//! the multi-threaded floor, and the control requests are answered by the same code
//! ([`super::control`]), so the swarm drives both unchanged. A connection that has not sent
//! its request head, or its `hello`, within 10 s is closed. SIGTERM ends the process (the
//! default action; the loop holds nothing to flush).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dropwire_core::protocol::ServerMsg;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::control::{self, Broadcast, QUEUE, Stock, find, now_ms};
use super::wire::{self, CLOSE, PING, PONG, TEXT};

const LISTENER: Token = Token(usize::MAX);
/// How long a connection may take to send its request head, or a viewer its `hello`.
const JOIN_WITHIN: Duration = Duration::from_secs(10);

/// Bytes waiting for a socket: a broadcast's shared buffer, or this socket's own frame.
#[derive(Debug)]
enum Chunk {
    Shared(Rc<[u8]>),
    Own(Vec<u8>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Shared(b) => b,
            Chunk::Own(b) => b,
        }
    }
}

/// A socket's pending output: the chunks it has not taken yet, and how much of the first
/// it has.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Chunk>,
    offset: usize,
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Writes a broadcast's shared buffer, or queues a handle on it (not a copy) when the
    /// socket does not take it all.
    pub fn send_shared(&mut self, w: &mut impl Write, frame: &Rc<[u8]>) -> io::Result<()> {
        if !self.write_now(w, frame)? {
            self.queue.push_back(Chunk::Shared(Rc::clone(frame)));
        }
        Ok(())
    }

    /// Writes this socket's own frame, or queues it when the socket does not take it all.
    pub fn send_own(&mut self, w: &mut impl Write, bytes: Vec<u8>) -> io::Result<()> {
        if !self.write_now(w, &bytes)? {
            self.queue.push_back(Chunk::Own(bytes));
        }
        Ok(())
    }

    /// Writes `bytes` when nothing waits before them; true when the socket took them all
    /// (else the offset is set for the chunk the caller queues).
    fn write_now(&mut self, w: &mut impl Write, bytes: &[u8]) -> io::Result<bool> {
        if !self.queue.is_empty() {
            return Ok(false);
        }
        let n = write_some(w, bytes)?;
        self.offset = n;
        Ok(n == bytes.len())
    }

    /// Writes what waits until the socket is full or nothing waits.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<()> {
        while let Some(front) = self.queue.front() {
            let rest = &front.bytes()[self.offset..];
            let n = write_some(w, rest)?;
            if n < rest.len() {
                self.offset += n;
                return Ok(());
            }
            self.queue.pop_front();
            self.offset = 0;
        }
        Ok(())
    }
}

/// One non-blocking write: the bytes the socket took, 0 when it is full.
fn write_some(w: &mut impl Write, bytes: &[u8]) -> io::Result<usize> {
    loop {
        return match w.write(bytes) {
            Ok(0) if !bytes.is_empty() => Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Its request head is not all here yet.
    Head,
    /// An HTTP control request.
    Control,
    /// Upgraded; waiting for its `hello`.
    Joining,
    /// Welcomed: gets every broadcast.
    Viewer,
}

struct Conn {
    stream: TcpStream,
    role: Role,
    /// Bytes read and not used yet (an incomplete head, request or frame).
    rbuf: Vec<u8>,
    out: Outbox,
    since: Instant,
    /// Close once the outbox is empty (a control answer, the answer to a close frame).
    closing: bool,
}

struct Single {
    poll: Poll,
    listener: TcpListener,
    /// Connections by token; `None` slots are listed in `free`.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    seq: u64,
    viewers: u64,
    stock: Stock,
    /// Accepting failed (out of file descriptors): retry soon, not only on the next event.
    accept_stalled: bool,
}

/// Serves until SIGTERM or Ctrl-C ends the process. Prints `listening on http://ADDR` when
/// ready. Blocks the calling thread, the only one it uses.
pub fn serve(bind: SocketAddr) -> anyhow::Result<()> {
    let mut listener =
        TcpListener::bind(bind).with_context(|| format!("cannot listen on --bind {bind}"))?;
    let addr = listener.local_addr()?;
    let poll = Poll::new().context("cannot create the epoll instance")?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("dropwire-floor (single thread) listening on http://{addr}");
    let mut floor = Single {
        poll,
        listener,
        conns: Vec::new(),
        free: Vec::new(),
        seq: 0,
        viewers: 0,
        stock: Stock::default(),
        accept_stalled: false,
    };
    floor.run()
}

impl Single {
    fn run(&mut self) -> anyhow::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut swept = Instant::now();
        loop {
            let wait = if self.accept_stalled {
                Duration::from_millis(50)
            } else {
                Duration::from_secs(1)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("epoll_wait");
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    Token(i) => self.ready(i, event.is_readable() || event.is_read_closed()),
                }
            }
            if self.accept_stalled {
                self.accept();
            }
            if swept.elapsed() >= Duration::from_secs(1) {
                swept = Instant::now();
                self.sweep();
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let i = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = self
                        .poll
                        .registry()
                        .register(&mut stream, Token(i), interest)
                    {
                        eprintln!("[floor] register: {e}");
                        self.free.push(i);
                        continue;
                    }
                    self.conns[i] = Some(Conn {
                        stream,
                        role: Role::Head,
                        rbuf: Vec::new(),
                        out: Outbox::default(),
                        since: Instant::now(),
                        closing: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_stalled = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors and the like: retry in a moment, do not spin.
                    if !self.accept_stalled {
                        eprintln!("[floor] accept: {e}");
                    }
                    self.accept_stalled = true;
                    return;
                }
            }
        }
    }

    /// Closes connections that never got as far as being a viewer.
    fn sweep(&mut self) {
        for i in 0..self.conns.len() {
            let stale = self.conns[i]
                .as_ref()
                .is_some_and(|c| c.role != Role::Viewer && c.since.elapsed() > JOIN_WITHIN);
            if stale {
                self.close(i);
            }
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(conn) = self.conns.get_mut(i).and_then(Option::take) {
            self.release(i, conn);
        }
    }

    fn release(&mut self, i: usize, mut conn: Conn) {
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if conn.role == Role::Viewer {
            self.viewers -= 1;
        }
        self.free.push(i);
    }

    /// Connection `i` is writable, or readable too: flush, read, answer. The connection is
    /// out of `conns` meanwhile, so a control request may publish to all the others.
    fn ready(&mut self, i: usize, readable: bool) {
        let Some(mut conn) = self.conns.get_mut(i).and_then(Option::take) else {
            return;
        };
        if self.serve_conn(&mut conn, readable) {
            self.conns[i] = Some(conn);
        } else {
            self.release(i, conn);
        }
    }

    /// False when the connection is done.
    fn serve_conn(&mut self, conn: &mut Conn, readable: bool) -> bool {
        if conn.out.flush(&mut conn.stream).is_err() {
            return false;
        }
        if readable && !conn.closing {
            let mut chunk = [0u8; 4096];
            loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => return false,
                    Ok(n) => {
                        conn.rbuf.extend_from_slice(&chunk[..n]);
                        if !self.take_input(conn) {
                            return false;
                        }
                        if conn.closing {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            if conn.rbuf.is_empty() {
                // Thousands of idle viewers: keep no read buffer between their frames.
                conn.rbuf = Vec::new();
            }
        }
        !(conn.closing && conn.out.is_empty())
    }

    /// Uses what `conn` has read so far; false when the connection must end.
    fn take_input(&mut self, conn: &mut Conn) -> bool {
        if conn.role == Role::Head {
            let Some(end) = find(&conn.rbuf, b"\r\n\r\n") else {
                return conn.rbuf.len() <= control::MAX_REQUEST;
            };
            if !control::is_upgrade(&conn.rbuf[..end]) {
                conn.role = Role::Control;
            } else {
                let Some(answer) = wire::upgrade_answer(&conn.rbuf[..end]) else {
                    return false;
                };
                conn.rbuf.drain(..end + 4);
                conn.role = Role::Joining;
                if send_own(conn, answer).is_err() {
                    return false;
                }
            }
        }
        if conn.role == Role::Control {
            return match control::parse_request(&conn.rbuf) {
                Ok(None) => true,
                Ok(Some(req)) => {
                    conn.rbuf.clear();
                    conn.closing = true;
                    match control::respond(self, &req) {
                        Ok(resp) => send_own(conn, resp).is_ok(),
                        Err(e) => {
                            eprintln!("[floor] {e:#}");
                            false
                        }
                    }
                }
                Err(_) => false,
            };
        }
        loop {
            let (frame, used) = match wire::client_frame(&conn.rbuf) {
                Ok(Some(f)) => f,
                Ok(None) => return true,
                Err(_) => return false,
            };
            conn.rbuf.drain(..used);
            let answer = match frame.opcode {
                TEXT if conn.role == Role::Joining => {
                    conn.role = Role::Viewer;
                    self.viewers += 1;
                    serde_json::to_string(&control::welcome(self.seq))
                        .ok()
                        .map(|t| wire::server_frame(TEXT, t.as_bytes()))
                }
                TEXT => std::str::from_utf8(&frame.payload)
                    .ok()
                    .and_then(|t| self.stock.claim(t))
                    .map(|t| wire::server_frame(TEXT, t.as_bytes())),
                CLOSE => {
                    conn.closing = true;
                    let code = frame.payload.get(..2).unwrap_or_default();
                    Some(wire::server_frame(CLOSE, code))
                }
                PING => Some(wire::server_frame(PONG, &frame.payload)),
                _ => None,
            };
            if let Some(bytes) = answer
                && send_own(conn, bytes).is_err()
            {
                return false;
            }
            if conn.closing {
                return true;
            }
        }
    }
}

fn send_own(conn: &mut Conn, bytes: Vec<u8>) -> io::Result<()> {
    conn.out.send_own(&mut conn.stream, bytes)
}

impl Broadcast for Single {
    fn publish(&mut self, msg: impl FnOnce(u64, u64) -> ServerMsg) -> anyhow::Result<u64> {
        let seq = self.seq + 1;
        let text = serde_json::to_string(&msg(seq, now_ms()))?;
        self.seq = seq;
        // Framed once; every socket gets these very bytes.
        let frame: Rc<[u8]> = wire::server_frame(TEXT, text.as_bytes()).into();
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_mut() else {
                continue;
            };
            if conn.role != Role::Viewer {
                continue;
            }
            let sent =
                conn.out.len() < QUEUE && conn.out.send_shared(&mut conn.stream, &frame).is_ok();
            if !sent {
                // Too far behind, or the socket failed: drop the viewer.
                self.close(i);
            }
        }
        Ok(seq)
    }

    fn viewers(&self) -> u64 {
        self.viewers
    }

    fn stock(&self) -> &Stock {
        &self.stock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `room` bytes until drained, then would block.
    #[derive(Default)]
    struct Pipe {
        got: Vec<u8>,
        room: usize,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let a: Rc<[u8]> = Rc::from(&b"0123456789"[..]);
        let b: Rc<[u8]> = Rc::from(&b"abcdef"[..]);
        let mut pipe = Pipe {
            room: 4,
            ..Pipe::default()
        };
        let mut out = Outbox::default();
        out.send_shared(&mut pipe, &a).unwrap();
        out.send_own(&mut pipe, b"XY".to_vec()).unwrap();
        out.send_shared(&mut pipe, &b).unwrap();
        assert_eq!((pipe.got.as_slice(), out.len()), (&b"0123"[..], 3));
        // The queued broadcast is the same buffer, not a copy.
        assert_eq!(Rc::strong_count(&a), 2);
        // Part of the own frame, then the rest of it on the next flush.
        pipe.room = 7;
        out.flush(&mut pipe).unwrap();
        assert_eq!((pipe.got.as_slice(), out.len()), (&b"0123456789X"[..], 2));
        assert_eq!(Rc::strong_count(&a), 1);
        pipe.room = 1;
        out.flush(&mut pipe).unwrap();
        assert_eq!((pipe.got.as_slice(), out.len()), (&b"0123456789XY"[..], 1));
        pipe.room = 100;
        out.flush(&mut pipe).unwrap();
        assert_eq!(pipe.got.as_slice(), b"0123456789XYabcdef");
        assert!(out.is_empty());
        // With nothing waiting, a frame is written at once and nothing is kept.
        out.send_shared(&mut pipe, &b).unwrap();
        assert!(out.is_empty());
        assert_eq!(Rc::strong_count(&b), 1);
    }
}
