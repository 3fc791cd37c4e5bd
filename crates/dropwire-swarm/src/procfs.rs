//! The server's resident memory and CPU time, read from `/proc` when it runs on this
//! machine, and the process listening on a local port.

use std::fs;
use std::path::Path;

/// Resident set size of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time of `pid` (user + system, every thread, live or exited), in microseconds.
///
/// `/proc/PID/stat` counts in clock ticks (10 ms here); the live threads' `schedstat` counts
/// in nanoseconds. The precise figure is the ticks' total with the live threads' share
/// replaced by their nanosecond sum, so short windows are measured well and threads that
/// exited in between are not lost.
pub fn cpu_us(pid: u32) -> Option<u64> {
    let ticks_us = stat_cpu_ticks(&format!("/proc/{pid}/stat"))? * tick_us();
    let mut live_ns = 0u64;
    let mut live_ticks = 0u64;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let dir = task.path();
        let (Some(ns), Some(t)) = (
            schedstat_ns(&dir.join("schedstat")),
            stat_cpu_ticks(&dir.join("stat").to_string_lossy()),
        ) else {
            continue;
        };
        live_ns += ns;
        live_ticks += t;
    }
    let exited_us = ticks_us.saturating_sub(live_ticks * tick_us());
    Some(exited_us + live_ns / 1000)
}

fn tick_us() -> u64 {
    // USER_HZ is 100 on every Linux ABI in use (the kernel fixes it for /proc's sake).
    10_000
}

fn schedstat_ns(path: &Path) -> Option<u64> {
    fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// utime + stime from a `stat` file, in ticks.
fn stat_cpu_ticks(path: &str) -> Option<u64> {
    let stat = fs::read_to_string(path).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ... utime is field 14, stime 15 → indexes 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The process listening on TCP `port` (IPv4 or IPv6), found through `/proc/net/tcp*`
/// and the processes' open sockets. Needs permission to read their `fd` directories.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is "HEXIP:HEXPORT"; st 0A is LISTEN; inode is field 9.
            let (Some(local), Some(st), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let lport = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if lport == Some(port) && *st == "0A" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for proc_entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path())
                && inodes.iter().any(|i| target.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// The whole machine's CPU time from `/proc/stat`, in µs: time charged to processes (user,
/// nice, system), interrupt time (irq + softirq, which Linux does not charge to the process
/// it interrupted: on loopback that is the receiving side of every send), and steal.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    pub tasks_us: u64,
    pub irq_us: u64,
    pub steal_us: u64,
}

pub fn machine_cpu() -> Option<MachineCpu> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    Some(MachineCpu {
        tasks_us: (f.first()? + f.get(1)? + f.get(2)?) * tick_us(),
        irq_us: (f.get(5)? + f.get(6)?) * tick_us(),
        steal_us: f.get(7)? * tick_us(),
    })
}

/// This process's soft and hard limits on open files.
pub fn open_files_limit() -> Option<(u64, u64)> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    Some((*nums.first()?, *nums.get(1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|k| k > 0));
        let before = cpu_us(me).unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_us(me).unwrap() >= before);
        let (soft, hard) = open_files_limit().unwrap();
        assert!(soft <= hard);
    }

    #[test]
    fn finds_the_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(pid_listening_on(port), Some(std::process::id()));
    }
}
