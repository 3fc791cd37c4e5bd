//! What a run measures besides the viewers: the server's RSS and CPU time (its processes
//! on this machine), and what else the machine did while the broadcasts ran.

use std::time::Instant;

use crate::procfs;

/// Reads the server's figures when it runs on this machine: summed over its processes
/// (several hub nodes), none when any of them cannot be read.
#[derive(Debug, Clone)]
pub(super) struct Probe(pub(super) Vec<u32>);

impl Probe {
    fn sum(&self, read: fn(u32) -> Option<u64>) -> Option<u64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.iter().map(|&pid| read(pid)).sum()
    }
    pub(super) fn rss(&self) -> Option<u64> {
        self.sum(procfs::rss_kib)
    }
    pub(super) fn cpu_us(&self) -> Option<u64> {
        self.sum(procfs::cpu_us)
    }
}

/// What else the machine did while the broadcasts ran: a busy neighbour shows up here.
pub(super) struct Window {
    start: Instant,
    machine: Option<procfs::MachineCpu>,
    me: Option<u64>,
}

impl Window {
    pub(super) fn open() -> Self {
        Window {
            start: Instant::now(),
            machine: procfs::machine_cpu(),
            me: procfs::cpu_us(std::process::id()),
        }
    }

    pub(super) fn close(self, server_ms: Option<f64>) -> Meanwhile {
        let mut m = Meanwhile {
            window_s: Some(self.start.elapsed().as_secs_f64()),
            ..Meanwhile::default()
        };
        let (Some(a), Some(b)) = (self.machine, procfs::machine_cpu()) else {
            return m;
        };
        let ms = |x: u64, y: u64| y.saturating_sub(x) as f64 / 1000.0;
        m.swarm_ms = cpu_ms(self.me, procfs::cpu_us(std::process::id()));
        m.irq_ms = Some(ms(a.irq_us, b.irq_us));
        m.steal_ms = Some(ms(a.steal_us, b.steal_us));
        if let (Some(me), Some(server)) = (m.swarm_ms, server_ms) {
            m.other_ms = Some((ms(a.tasks_us, b.tasks_us) - me - server).max(0.0));
        }
        m
    }
}

#[derive(Debug, Default)]
pub(super) struct Meanwhile {
    pub(super) window_s: Option<f64>,
    pub(super) swarm_ms: Option<f64>,
    pub(super) other_ms: Option<f64>,
    pub(super) irq_ms: Option<f64>,
    pub(super) steal_ms: Option<f64>,
}

pub(super) fn cpu_ms(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    Some(b?.saturating_sub(a?) as f64 / 1000.0)
}
