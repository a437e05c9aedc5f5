//! Real host metrics for a report, read with `sysinfo`.
//!
//! CPU usage is a difference between two readings, so a `Collector` lives as long as the
//! agent and the first report waits `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL` after the first
//! reading. Values are clamped into the ranges the server accepts (a kernel can briefly
//! report 100.0001 %), so a healthy host never has its report refused.

use std::collections::BTreeMap;

use anyhow::Context;
use sysinfo::{Disks, Networks, System};

use crate::fleet::report::{Disk, Network, Usage, rfc3339_ms};
use crate::fleet::{Millis, Report};

/// Pseudo file systems whose "disks" are not storage an operator watches.
const SKIP_FS: [&str; 6] = ["tmpfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs"];
const MAX_DISKS: usize = 64;

pub struct Collector {
    sys: System,
    disks: Disks,
    networks: Networks,
    machine_id: String,
    hostname: String,
    os: String,
    kernel: String,
}

impl Collector {
    /// Take the first CPU reading. `machine_id` overrides the detected one
    /// (`/etc/machine-id`, else the hostname).
    pub fn new(machine_id: Option<String>) -> anyhow::Result<Collector> {
        let mut sys = System::new().context("cannot read system information")?;
        sys.refresh_cpu_usage();
        let hostname = System::host_name()
            .ok()
            .or_else(|| hostname::get().ok().and_then(|h| h.into_string().ok()))
            .unwrap_or_else(|| "localhost".into());
        let machine_id = machine_id.unwrap_or_else(|| detect_machine_id(&hostname));
        Ok(Collector {
            disks: Disks::new_with_refreshed_list().context("cannot list disks")?,
            networks: Networks::new_with_refreshed_list()
                .context("cannot list network interfaces")?,
            os: System::long_os_version()
                .or_else(|_| System::name())
                .unwrap_or_else(|_| std::env::consts::OS.into()),
            kernel: System::kernel_version().unwrap_or_else(|_| "unknown".into()),
            sys,
            machine_id,
            hostname,
        })
    }

    pub fn machine_id(&self) -> &str {
        &self.machine_id
    }

    /// Read every metric now. Call at least `MINIMUM_CPU_UPDATE_INTERVAL` after `new` or the
    /// previous call for a meaningful CPU figure.
    pub fn collect(&mut self, now: Millis) -> Report {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        self.disks.refresh(true);
        self.networks.refresh(true);
        let load = System::load_average()
            .map(|l| [l.one, l.five, l.fifteen])
            .unwrap_or([0.0; 3]);
        let mut disks: BTreeMap<String, Disk> = BTreeMap::new();
        for d in self.disks.iter() {
            let fs = d.file_system().to_string_lossy();
            if d.total_space() == 0 || SKIP_FS.contains(&fs.as_ref()) {
                continue;
            }
            let mount = d.mount_point().to_string_lossy().into_owned();
            let total = d.total_space();
            let used = total.saturating_sub(d.available_space());
            disks.entry(mount.clone()).or_insert(Disk {
                mount,
                total_bytes: total,
                used_bytes: used,
            });
        }
        let (mut rx, mut tx) = (0u64, 0u64);
        for (name, data) in self.networks.iter() {
            if name.to_string_lossy() == "lo" {
                continue;
            }
            rx = rx.saturating_add(data.total_received());
            tx = tx.saturating_add(data.total_transmitted());
        }
        let total_memory = self.sys.total_memory().max(1);
        let total_swap = self.sys.total_swap();
        Report {
            machine_id: self.machine_id.clone(),
            hostname: self.hostname.clone(),
            os: self.os.clone(),
            kernel: self.kernel.clone(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            timestamp: rfc3339_ms(now),
            uptime_secs: System::uptime().unwrap_or(0),
            cpu_percent: (f64::from(self.sys.global_cpu_usage()).clamp(0.0, 100.0) * 100.0).round()
                / 100.0,
            cpu_cores: (self.sys.cpus().len() as u32).clamp(1, 4096),
            load: load.map(|l| {
                if l.is_finite() {
                    l.clamp(0.0, 100_000.0)
                } else {
                    0.0
                }
            }),
            memory: Usage {
                total_bytes: total_memory,
                used_bytes: self.sys.used_memory().min(total_memory),
            },
            swap: Usage {
                total_bytes: total_swap,
                used_bytes: self.sys.used_swap().min(total_swap),
            },
            disks: disks.into_values().take(MAX_DISKS).collect(),
            network: Network {
                rx_bytes: rx,
                tx_bytes: tx,
            },
        }
    }
}

/// `/etc/machine-id` (stable across reboots and renames), else the hostname made valid.
fn detect_machine_id(hostname: &str) -> String {
    let from_file = std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| {
            !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric())
        });
    from_file.unwrap_or_else(|| {
        let id: String = hostname
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(128)
            .collect();
        if id.is_empty() {
            "localhost".into()
        } else {
            id
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collected_report_passes_the_servers_validation() {
        let mut c = Collector::new(None).unwrap();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let now = crate::agent::now_ms();
        let r = c.collect(now);
        r.check(now).unwrap();
        assert!(r.memory.total_bytes > 0);
    }
}
