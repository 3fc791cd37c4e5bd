//! Free ports for the servers tests start, reserved so nothing else takes them.
//!
//! A port the kernel hands out for `bind(0)` comes from its ephemeral range, the same range
//! every outgoing connection's local port comes from: a `redis-server` killed and restarted
//! by a test may find its port taken by some client socket in between, and two servers
//! started at once by tests in two processes may pick the same port. So test servers take
//! their ports below the ephemeral range (nothing is handed those without asking), and
//! reserve each one with a file created exclusively in a directory every test process
//! shares. A reservation whose process is gone is taken over.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The ports test servers use: below Linux's default ephemeral range (32768–60999), above
/// the registered services most machines run. A cluster node's bus port (+10000) must stay
/// in it too, so those come from the lower part.
const LOW: u16 = 12_000;
const HIGH: u16 = 32_000;
const BUS_OFFSET: u16 = 10_000;

/// A port reserved for this process until dropped.
#[derive(Debug)]
pub struct Port {
    pub port: u16,
    files: Vec<PathBuf>,
}

impl Port {
    /// A free port, reserved.
    pub fn free() -> Port {
        Self::find(false)
    }

    /// A free port whose cluster bus port (+10000) is free and reserved too.
    pub(crate) fn free_with_bus() -> Port {
        Self::find(true)
    }

    fn find(bus: bool) -> Port {
        static TRIES: AtomicU32 = AtomicU32::new(0);
        let span = u32::from(if bus {
            HIGH - BUS_OFFSET - LOW
        } else {
            HIGH - LOW
        });
        // Start from a place of this process's own, so processes rarely meet.
        let seed = std::process::id().wrapping_mul(2_654_435_761);
        for _ in 0..10_000 {
            let n = TRIES.fetch_add(1, Ordering::Relaxed);
            let port = LOW + (seed.wrapping_add(n.wrapping_mul(7_919)) % span) as u16;
            let wanted: Vec<u16> = if bus {
                vec![port, port + BUS_OFFSET]
            } else {
                vec![port]
            };
            if let Some(files) = reserve_all(&wanted) {
                return Port { port, files };
            }
        }
        panic!("no free port between {LOW} and {HIGH}");
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join("dropwire-test-ports");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Reserves every port of `ports`, or none.
fn reserve_all(ports: &[u16]) -> Option<Vec<PathBuf>> {
    let mut files = Vec::new();
    for &p in ports {
        match reserve(p) {
            Some(f) => files.push(f),
            None => {
                for f in &files {
                    let _ = std::fs::remove_file(f);
                }
                return None;
            }
        }
    }
    Some(files)
}

/// Reserves `port` if it is free to listen on and no live process holds it.
fn reserve(port: u16) -> Option<PathBuf> {
    let file = dir().join(port.to_string());
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&file) {
            Ok(mut f) => {
                let _ = write!(f, "{}", std::process::id());
                if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                    return Some(file);
                }
                let _ = std::fs::remove_file(&file);
                return None;
            }
            Err(_) => {
                // Held: by a live process (leave it), or by one that died (take it over).
                // One process at a time takes a port over (two that both saw the dead
                // holder would otherwise each remove the other's fresh reservation); a
                // takeover left by a process that died in it only makes this port unused.
                let takeover = dir().join(format!("{port}.takeover"));
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&takeover)
                    .ok()?;
                let stale = holder_is_gone(&file);
                if stale {
                    let _ = std::fs::remove_file(&file);
                }
                let _ = std::fs::remove_file(&takeover);
                if !stale {
                    return None;
                }
            }
        }
    }
    None
}

/// Whether the process that reserved this file has gone (a live one, this one included,
/// keeps it; an unreadable file is left alone).
fn holder_is_gone(file: &std::path::Path) -> bool {
    let Some(pid) = std::fs::read_to_string(file)
        .ok()
        .and_then(|holder| holder.trim().parse::<u32>().ok())
    else {
        return false;
    };
    pid != std::process::id() && !PathBuf::from(format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_holders_port_is_taken_over_once() {
        let held = Port::free();
        let port = held.port;
        // As if a process that no longer exists had reserved it.
        std::fs::write(&held.files[0], "4000000000").unwrap();
        let takeover = dir().join(format!("{port}.takeover"));
        std::fs::write(&takeover, "").unwrap();
        assert_eq!(reserve(port), None, "another process is taking it over");
        std::fs::remove_file(&takeover).unwrap();
        let file = reserve(port).expect("taken over");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            std::process::id().to_string()
        );
        assert_eq!(reserve(port), None, "now held by a live process");
    }
}
