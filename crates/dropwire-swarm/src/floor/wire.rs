//! The WebSocket wire format, by hand, for the single-thread floor: the upgrade answer,
//! server frames (unmasked, built once and written to every socket as they are), and the
//! client's masked frames (RFC 6455 §5.2). Just what a viewer sends: text, close, ping and
//! pong, each in one unfragmented frame of at most [`MAX_PAYLOAD`] bytes.

use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::control::header;

/// The largest client frame payload read (as the multi-threaded floor's limit).
pub const MAX_PAYLOAD: usize = 64 * 1024;

pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// The `101 Switching Protocols` answer to an upgrade request head, or `None` when the head
/// has no `Sec-WebSocket-Key`.
pub fn upgrade_answer(head: &[u8]) -> Option<Vec<u8>> {
    let head = String::from_utf8_lossy(head);
    let key = header(&head, "sec-websocket-key")?;
    Some(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes(),
    )
}

/// One final server frame: the header (2, 4 or 10 bytes, no mask) and the payload.
pub fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut frame = Vec::with_capacity(n + 10);
    frame.push(0x80 | opcode);
    if n < 126 {
        frame.push(n as u8);
    } else if let Ok(short) = u16::try_from(n) {
        frame.push(126);
        frame.extend_from_slice(&short.to_be_bytes());
    } else {
        frame.push(127);
        frame.extend_from_slice(&(n as u64).to_be_bytes());
    }
    frame.extend_from_slice(payload);
    frame
}

/// One client frame, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Why a client's bytes end its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadFrame {
    /// Clients must mask every frame.
    Unmasked,
    /// A continuation or a non-final frame: viewers send whole messages.
    Fragmented,
    TooLarge,
}

/// Reads the first frame of `buf`: `Ok(None)` while it is incomplete, else the frame and
/// the bytes it took.
pub fn client_frame(buf: &[u8]) -> Result<Option<(ClientFrame, usize)>, BadFrame> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
    if !fin || opcode == 0 {
        return Err(BadFrame::Fragmented);
    }
    if b1 & 0x80 == 0 {
        return Err(BadFrame::Unmasked);
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let len = usize::try_from(len).map_err(|_| BadFrame::TooLarge)?;
    if len > MAX_PAYLOAD {
        return Err(BadFrame::TooLarge);
    }
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    at += 4;
    let Some(masked) = buf.get(at..at + len) else {
        return Ok(None);
    };
    let payload = masked
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    Ok(Some((ClientFrame { opcode, payload }, at + len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

    /// A frame as tungstenite's client writes it (masked).
    fn masked(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut frame = Frame::message(payload.to_vec(), opcode, true);
        frame.header_mut().mask = Some([0x37, 0xfa, 0x21, 0x3d]);
        let mut out = Vec::new();
        frame.format(&mut out).unwrap();
        out
    }

    #[test]
    fn reads_what_a_client_writes() {
        for n in [0usize, 5, 125, 126, 300, 65_535, 65_536] {
            let payload: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let bytes = masked(OpCode::Data(Data::Text), &payload);
            for cut in [0, 1, 2, bytes.len() / 2, bytes.len() - 1] {
                assert_eq!(client_frame(&bytes[..cut]), Ok(None), "{n} cut at {cut}");
            }
            let mut two = bytes.clone();
            two.extend_from_slice(&bytes);
            let (frame, used) = client_frame(&two).unwrap().unwrap();
            assert_eq!((frame.opcode, used), (TEXT, bytes.len()));
            assert_eq!(frame.payload, payload);
        }
        let big = masked(OpCode::Data(Data::Text), &vec![0; MAX_PAYLOAD + 1]);
        assert_eq!(client_frame(&big), Err(BadFrame::TooLarge));
        let mut unmasked = Vec::new();
        Frame::message(b"hi".to_vec(), OpCode::Data(Data::Text), true)
            .format(&mut unmasked)
            .unwrap();
        assert_eq!(client_frame(&unmasked), Err(BadFrame::Unmasked));
        let mut part = Frame::message(b"hi".to_vec(), OpCode::Data(Data::Text), false);
        part.header_mut().mask = Some([1, 2, 3, 4]);
        let mut bytes = Vec::new();
        part.format(&mut bytes).unwrap();
        assert_eq!(client_frame(&bytes), Err(BadFrame::Fragmented));
    }

    #[test]
    fn a_client_reads_what_the_floor_writes() {
        for n in [0usize, 125, 126, 65_535, 65_536, 70_000] {
            let payload = vec![b'x'; n];
            let bytes = server_frame(TEXT, &payload);
            let mut cursor = std::io::Cursor::new(bytes.as_slice());
            let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert!(header.is_final);
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
            assert_eq!(header.mask, None);
            assert_eq!(len, n as u64);
            assert_eq!(cursor.position() as usize + n, bytes.len());
        }
    }

    #[test]
    fn the_upgrade_answer_carries_the_accept_key() {
        // The example of RFC 6455 §1.3.
        let head = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let answer = String::from_utf8(upgrade_answer(head).unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 101 "));
        assert!(answer.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert_eq!(
            upgrade_answer(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n"),
            None
        );
    }
}
