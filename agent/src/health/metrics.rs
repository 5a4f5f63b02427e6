//! `/metrics`: the snapshot and the CSI counters as OpenMetrics text through prometheus-client,
//! names `hearth_*` with units. Owns the metric names (docs/status.md lists them); reads only
//! the snapshot it is given.

use std::collections::BTreeMap;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::csi_ops::{OpCounters, BUCKETS};
use super::snapshot::{SectionState, Snapshot};

type Labels = Vec<(&'static str, String)>;

/// A label value with the characters the text format would need escaped replaced.
fn clean(v: &str) -> String {
    v.chars()
        .map(|c| {
            if matches!(c, '"' | '\\' | '\n') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

struct Family {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    rows: Vec<(Labels, f64)>,
}

/// Writes one family; counters get `_total`, units their suffix.
fn write(enc: &mut DescriptorEncoder, f: &Family) -> fmt::Result {
    let mut m = enc.encode_descriptor(f.name, f.help, f.unit.as_ref(), f.kind)?;
    for (labels, v) in &f.rows {
        if labels.is_empty() {
            value(&mut m, &f.kind, *v)?;
        } else {
            value(&mut m.encode_family(labels)?, &f.kind, *v)?;
        }
    }
    Ok(())
}

fn value(m: &mut MetricEncoder, kind: &MetricType, v: f64) -> fmt::Result {
    match kind {
        MetricType::Counter => m.encode_counter::<NoLabelSet, _, f64>(&v, None),
        _ => m.encode_gauge(&v),
    }
}

fn gauge(name: &'static str, help: &'static str, unit: Option<Unit>) -> Family {
    Family {
        name,
        help,
        unit,
        kind: MetricType::Gauge,
        rows: Vec::new(),
    }
}

fn counter(name: &'static str, help: &'static str, unit: Option<Unit>) -> Family {
    Family {
        name,
        help,
        unit,
        kind: MetricType::Counter,
        rows: Vec::new(),
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// One scrape's view: encodes on demand.
#[derive(Debug)]
struct Scrape {
    snap: std::sync::Arc<Snapshot>,
    ops: BTreeMap<String, OpCounters>,
}

impl Scrape {
    fn families(&self) -> Vec<Family> {
        let s = &self.snap;
        let mut info = gauge("hearth_info", "The agent's node name and version.", None);
        info.rows.push((
            vec![
                ("node", clean(&s.node_name)),
                ("version", clean(&s.version)),
            ],
            1.0,
        ));
        let mut collect = gauge(
            "hearth_snapshot_collect",
            "Time spent building the snapshot.",
            Some(Unit::Seconds),
        );
        collect.rows.push((vec![], s.collect_millis / 1000.0));
        let mut up = gauge(
            "hearth_section_up",
            "1 when a collector section holds data.",
            None,
        );
        for (name, state) in [
            ("storage", s.storage.state),
            ("drbd", s.drbd.state),
            ("network", s.network.state),
            ("coordinator", s.coordinator.state),
            ("node", s.node.state),
        ]
        .into_iter()
        // The OVN section exists only with an `ovn:` section in the network file.
        .chain(s.ovn.as_ref().map(|o| ("ovn", o.state)))
        .chain(
            s.kubelet_registration
                .as_ref()
                .map(|r| ("kubelet_registration", r.state)),
        ) {
            up.rows.push((
                vec![("section", name.into())],
                flag(state == SectionState::Ok),
            ));
        }
        let mut checks = gauge("hearth_check_ok", "1 when a health check passes.", None);
        for c in &s.checks {
            checks
                .rows
                .push((vec![("check", clean(&c.name))], flag(c.ok)));
        }
        let mut pool_free = gauge(
            "hearth_storage_pool_free",
            "Free space of a storage pool.",
            Some(Unit::Bytes),
        );
        let mut pool_cap = gauge(
            "hearth_storage_pool_capacity",
            "Total size of a storage pool.",
            Some(Unit::Bytes),
        );
        let mut vol_size = gauge(
            "hearth_volume_size",
            "Provisioned size of a volume.",
            Some(Unit::Bytes),
        );
        let mut vol_used = gauge(
            "hearth_volume_fs_used",
            "Filesystem bytes used on a staged volume.",
            Some(Unit::Bytes),
        );
        let mut vol_ok = gauge(
            "hearth_volume_healthy",
            "1 unless the volume's condition is abnormal.",
            None,
        );
        let mut vol_att = gauge(
            "hearth_volume_attached",
            "1 when the volume has a local device.",
            None,
        );
        for st in s.storage.data.iter() {
            for p in &st.pools {
                let l = vec![("pool", clean(&p.name)), ("node", clean(&p.node))];
                if let Some(free) = p.free_bytes {
                    pool_free.rows.push((l.clone(), free as f64));
                }
                if let Some(total) = p.total_bytes {
                    pool_cap.rows.push((l, total as f64));
                }
            }
            for v in &st.volumes {
                let l = vec![("volume", clean(&v.id))];
                vol_size.rows.push((l.clone(), v.size_bytes as f64));
                if let Some(used) = v.fs_used_bytes {
                    vol_used.rows.push((l.clone(), used as f64));
                }
                vol_ok.rows.push((l.clone(), flag(v.healthy)));
                vol_att.rows.push((l, flag(v.device.is_some())));
            }
        }
        let mut oos = gauge(
            "hearth_drbd_peer_out_of_sync",
            "Data out of sync toward a DRBD peer.",
            Some(Unit::Bytes),
        );
        let mut primary = gauge(
            "hearth_drbd_resource_primary",
            "1 when the DRBD resource is Primary here.",
            None,
        );
        let mut connected = gauge(
            "hearth_drbd_peer_connected",
            "1 when the DRBD connection is Connected.",
            None,
        );
        for d in s.drbd.data.iter() {
            for r in &d.resources {
                primary.rows.push((
                    vec![("resource", clean(&r.name))],
                    flag(r.role == "Primary"),
                ));
                for p in &r.peers {
                    let l = vec![("resource", clean(&r.name)), ("peer", clean(&p.name))];
                    oos.rows
                        .push((l.clone(), (p.out_of_sync_kib * 1024) as f64));
                    connected.rows.push((l, flag(p.connection == "Connected")));
                }
            }
        }
        let mut link_up = gauge(
            "hearth_link_up",
            "1 when the link is administratively up.",
            None,
        );
        let mut link_mtu = gauge("hearth_link_mtu", "The link's MTU.", Some(Unit::Bytes));
        let mut fip = gauge(
            "hearth_floating_ip_held",
            "1 for each floating IP this node answers for.",
            None,
        );
        let mut converged = gauge(
            "hearth_network_converged",
            "1 when the network reconciler's last pass left no failure and no conflict.",
            None,
        );
        let mut last_pass = gauge(
            "hearth_network_last_pass_timestamp",
            "When the network reconciler's last pass ended.",
            Some(Unit::Seconds),
        );
        let mut pass_failures = gauge(
            "hearth_network_last_pass_failures",
            "Steps of the network reconciler's last pass that failed.",
            None,
        );
        let mut pass_conflicts = gauge(
            "hearth_network_last_pass_conflicts",
            "Desired network objects blocked by objects Hearth does not own.",
            None,
        );
        for n in s.network.data.iter() {
            if let Some(r) = &n.reconciler {
                converged.rows.push((vec![], flag(r.converged)));
                if let Some(at) = r.last_pass_unix {
                    last_pass.rows.push((vec![], at));
                    pass_failures.rows.push((vec![], f64::from(r.failures)));
                    pass_conflicts.rows.push((vec![], f64::from(r.conflicts)));
                }
            }
            for l in &n.links {
                let labels = vec![("link", clean(&l.name)), ("owned", l.owned.to_string())];
                link_up.rows.push((labels.clone(), flag(l.up)));
                if let Some(mtu) = l.mtu {
                    link_mtu.rows.push((labels, f64::from(mtu)));
                }
            }
            for f in &n.floating_ips {
                fip.rows.push((
                    vec![("address", clean(&f.address)), ("dev", clean(&f.dev))],
                    1.0,
                ));
            }
        }
        let mut fip_epoch = gauge(
            "hearth_floating_ip_epoch",
            "The coordinator's epoch of a floating IP this node holds under its lease.",
            None,
        );
        let mut session = gauge(
            "hearth_coordinator_connected",
            "1 while the session to the coordinator is open.",
            None,
        );
        let mut lease = gauge(
            "hearth_coordinator_lease_valid",
            "1 while this node holds a valid lease (it may answer for floating IPs).",
            None,
        );
        let mut sessions = counter(
            "hearth_coordinator_sessions",
            "Sessions opened to the coordinator (reconnects + 1).",
            None,
        );
        let mut fip_requests = counter(
            "hearth_floating_ip_requests",
            "ARP requests and neighbour solicitations seen for a held floating IP on its interface.",
            None,
        );
        let mut fip_answers = counter(
            "hearth_floating_ip_answers",
            "ARP replies and neighbour advertisements sent for held floating IPs.",
            None,
        );
        let mut fip_refused = counter(
            "hearth_floating_ip_refused",
            "Requests for a held floating IP not answered: the answer gate was shut.",
            None,
        );
        for c in s.coordinator.data.iter() {
            if let Some(r) = c.responder {
                fip_requests.rows.push((vec![], r.requests as f64));
                fip_answers.rows.push((vec![], r.answered as f64));
                fip_refused.rows.push((vec![], r.refused as f64));
            }
            session.rows.push((vec![], flag(c.session == "connected")));
            lease.rows.push((vec![], flag(c.lease_valid)));
            sessions.rows.push((vec![], c.sessions as f64));
            for f in &c.floating_ips {
                let labels = vec![("address", clean(&f.address)), ("dev", clean(&f.dev))];
                if s.network.data.is_none() {
                    fip.rows.push((labels.clone(), 1.0));
                }
                if let Some(e) = f.epoch {
                    fip_epoch.rows.push((labels, e as f64));
                }
            }
        }
        let mut load = gauge("hearth_node_load", "Load average.", None);
        let mut mem_total = gauge("hearth_node_memory_total", "MemTotal.", Some(Unit::Bytes));
        let mut mem_avail = gauge(
            "hearth_node_memory_available",
            "MemAvailable.",
            Some(Unit::Bytes),
        );
        let mut disk_r = counter(
            "hearth_node_disk_read",
            "Bytes read from a block device.",
            Some(Unit::Bytes),
        );
        let mut disk_w = counter(
            "hearth_node_disk_written",
            "Bytes written to a block device.",
            Some(Unit::Bytes),
        );
        let mut net_rx = counter(
            "hearth_node_network_receive",
            "Bytes received on an interface.",
            Some(Unit::Bytes),
        );
        let mut net_tx = counter(
            "hearth_node_network_transmit",
            "Bytes sent on an interface.",
            Some(Unit::Bytes),
        );
        let mut net_err = counter(
            "hearth_node_network_errors",
            "Receive and transmit errors on an interface.",
            None,
        );
        for n in s.node.data.iter() {
            for (period, v) in ["1m", "5m", "15m"].iter().zip(n.load) {
                load.rows.push((vec![("period", (*period).into())], v));
            }
            mem_total.rows.push((vec![], n.memory_total_bytes as f64));
            mem_avail
                .rows
                .push((vec![], n.memory_available_bytes as f64));
            for d in &n.disks {
                disk_r
                    .rows
                    .push((vec![("device", clean(&d.name))], d.read_bytes as f64));
                disk_w
                    .rows
                    .push((vec![("device", clean(&d.name))], d.written_bytes as f64));
            }
            for i in &n.interfaces {
                let l = vec![("interface", clean(&i.name))];
                net_rx.rows.push((l.clone(), i.rx_bytes as f64));
                net_tx.rows.push((l.clone(), i.tx_bytes as f64));
                net_err.rows.push((l, (i.rx_errors + i.tx_errors) as f64));
            }
        }
        let mut calls = counter("hearth_csi_operations", "CSI calls served.", None);
        let mut errors = counter(
            "hearth_csi_operation_errors",
            "CSI calls that failed, by gRPC code.",
            None,
        );
        for (method, op) in &self.ops {
            calls
                .rows
                .push((vec![("method", clean(method))], op.stats.count as f64));
            for (code, n) in &op.stats.errors {
                errors.rows.push((
                    vec![("method", clean(method)), ("code", clean(code))],
                    *n as f64,
                ));
            }
        }
        vec![
            info,
            collect,
            up,
            checks,
            pool_cap,
            pool_free,
            vol_size,
            vol_used,
            vol_ok,
            vol_att,
            oos,
            primary,
            connected,
            converged,
            last_pass,
            pass_failures,
            pass_conflicts,
            link_up,
            link_mtu,
            fip,
            fip_epoch,
            session,
            lease,
            sessions,
            fip_requests,
            fip_answers,
            fip_refused,
            load,
            mem_total,
            mem_avail,
            disk_r,
            disk_w,
            net_rx,
            net_tx,
            net_err,
            calls,
            errors,
        ]
    }

    fn histograms(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let unit = Unit::Seconds;
        let mut m = enc.encode_descriptor(
            "hearth_csi_operation_duration",
            "Time to serve a CSI call.",
            Some(&unit),
            MetricType::Histogram,
        )?;
        for (method, op) in &self.ops {
            let mut buckets: Vec<(f64, u64)> = BUCKETS.iter().copied().zip(op.buckets).collect();
            let counted: u64 = op.buckets.iter().sum();
            buckets.push((f64::MAX, op.stats.count.saturating_sub(counted)));
            let labels = vec![("method", clean(method))];
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                op.stats.seconds_sum,
                op.stats.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        for f in self.families() {
            write(&mut enc, &f)?;
        }
        self.histograms(&mut enc)
    }
}

/// The OpenMetrics text of `snap` and the CSI counters `ops`.
pub fn render(snap: std::sync::Arc<Snapshot>, ops: BTreeMap<String, OpCounters>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { snap, ops }));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::csi_ops::CsiRecorder;
    use std::time::Duration;

    #[test]
    fn renders_names_with_units_and_eof() {
        let rec = CsiRecorder::default();
        rec.record("/csi.v1.Node/NodeStageVolume", 5, Duration::from_millis(2));
        let snap = std::sync::Arc::new(Snapshot {
            node_name: "n\"1".into(),
            ..Snapshot::default()
        });
        let text = render(snap, rec.counters());
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("hearth_info{node=\"n_1\""));
        assert!(text.contains("# TYPE hearth_csi_operation_duration_seconds histogram"));
        assert!(
            text.contains("hearth_csi_operations_total{method=\"/csi.v1.Node/NodeStageVolume\"} 1")
        );
        assert!(text.contains("hearth_csi_operation_errors_total{method=\"/csi.v1.Node/NodeStageVolume\",code=\"NotFound\"} 1"));
        assert!(text.contains("le=\"+Inf\",method=\"/csi.v1.Node/NodeStageVolume\"} 1"));
    }

    #[test]
    fn pools_and_the_reconciler_have_series() {
        use crate::health::snapshot::{Network, Reconciler, Section, Storage, StoragePool};
        let snap = std::sync::Arc::new(Snapshot {
            storage: Section::ok(Storage {
                pools: vec![StoragePool {
                    name: "data".into(),
                    node: "node-a".into(),
                    kind: "LVM_THIN".into(),
                    total_bytes: Some(4096),
                    free_bytes: Some(1024),
                }],
                ..Storage::default()
            }),
            network: Section::ok(Network {
                reconciler: Some(Reconciler {
                    last_pass_unix: Some(1_700_000_000.5),
                    converged: false,
                    conflicts: 2,
                    ..Reconciler::default()
                }),
                ..Network::default()
            }),
            ..Snapshot::default()
        });
        let text = render(snap, BTreeMap::new());
        for line in [
            "hearth_storage_pool_capacity_bytes{pool=\"data\",node=\"node-a\"} 4096",
            "hearth_storage_pool_free_bytes{pool=\"data\",node=\"node-a\"} 1024",
            "hearth_network_converged 0",
            "hearth_network_last_pass_timestamp_seconds 1700000000.5",
            "hearth_network_last_pass_failures 0",
            "hearth_network_last_pass_conflicts 2",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
