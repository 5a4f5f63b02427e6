//! The node collector: load, memory, disk and network counters from procfs. Owns only reads of
//! `/proc`; touches nothing else.

use procfs::{Current, LoadAverage, Meminfo};

use super::snapshot::{DiskCounters, InterfaceCounters, NodeStats};
use super::HealthError;

/// Reads node counters.
pub trait NodeSource: Send + Sync {
    /// One reading.
    fn node(&self) -> Result<NodeStats, HealthError>;
}

/// The real source: this host's `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcNode;

fn proc_err(what: &'static str) -> impl Fn(procfs::ProcError) -> HealthError {
    move |e| HealthError::ReadProc {
        what,
        message: e.to_string(),
    }
}

impl NodeSource for ProcNode {
    fn node(&self) -> Result<NodeStats, HealthError> {
        let load = LoadAverage::current().map_err(proc_err("loadavg"))?;
        let mem = Meminfo::current().map_err(proc_err("meminfo"))?;
        let mut disks: Vec<DiskCounters> = procfs::diskstats()
            .map_err(proc_err("diskstats"))?
            .into_iter()
            .filter(|d| d.sectors_read > 0 || d.sectors_written > 0)
            .map(|d| DiskCounters {
                name: d.name,
                read_bytes: d.sectors_read.saturating_mul(512),
                written_bytes: d.sectors_written.saturating_mul(512),
            })
            .collect();
        disks.sort_by(|a, b| a.name.cmp(&b.name));
        let mut interfaces: Vec<InterfaceCounters> = procfs::net::dev_status()
            .map_err(proc_err("net/dev"))?
            .into_values()
            .map(|d| InterfaceCounters {
                name: d.name,
                rx_bytes: d.recv_bytes,
                tx_bytes: d.sent_bytes,
                rx_errors: d.recv_errs,
                tx_errors: d.sent_errs,
            })
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(NodeStats {
            load: [load.one.into(), load.five.into(), load.fifteen.into()],
            memory_total_bytes: mem.mem_total,
            memory_available_bytes: mem.mem_available.unwrap_or(mem.mem_free),
            disks,
            interfaces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_hosts_proc() {
        let n = ProcNode.node().expect("procfs is readable");
        assert!(n.memory_total_bytes > 0);
        assert!(n.interfaces.iter().any(|i| i.name == "lo"));
    }
}
