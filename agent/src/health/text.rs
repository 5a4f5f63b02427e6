//! The human view of a snapshot: the `/status?format=text` summary and the `hearth status`
//! table (volumes, floating IPs, DRBD peers, checks with ✓/✗ and reasons). Pure formatting.

use std::fmt::Write;

use super::snapshot::{Reconciler, Section, SectionState, Snapshot};

fn section_line<T>(out: &mut String, name: &str, s: &Section<T>) {
    let state = match s.state {
        SectionState::Ok => "ok",
        SectionState::Error => "error",
        SectionState::NotConfigured => "not configured",
        SectionState::Unavailable => "unavailable",
    };
    let _ = match &s.reason {
        Some(r) => writeln!(out, "  {name:<12} {state}: {r}"),
        None => writeln!(out, "  {name:<12} {state}"),
    };
}

fn reconciler_line(r: &Reconciler, snap: &Snapshot) -> String {
    if let Some(why) = &r.stopped {
        return format!("✗ stopped: {why}");
    }
    let Some(at) = r.last_pass_unix else {
        return "… first pass not finished".into();
    };
    let age = (snap.collected_at_unix - at).max(0.0);
    let mark = if r.converged {
        "✓ converged"
    } else {
        "✗ not converged"
    };
    format!(
        "{mark}, last pass {age:.0}s ago, {} failure(s), {} conflict(s)",
        r.failures, r.conflicts
    )
}

/// Renders `snap`; `wide` adds paths, conditions and per-link detail.
pub fn render(snap: &Snapshot, wide: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {}  hearth {}  (collected in {:.1} ms)",
        snap.node_name, snap.version, snap.collect_millis
    );
    out.push_str("\nCHECKS\n");
    for c in &snap.checks {
        let mark = if c.ok { "✓" } else { "✗" };
        let req = if c.required { "" } else { " (advisory)" };
        let _ = writeln!(out, "  {mark} {:<11} {}{req}", c.name, c.reason);
        if let Some(h) = c.hint.as_ref().filter(|_| !c.ok) {
            let _ = writeln!(out, "      → {h}");
        }
    }
    out.push_str("\nSECTIONS\n");
    section_line(&mut out, "storage", &snap.storage);
    section_line(&mut out, "drbd", &snap.drbd);
    section_line(&mut out, "network", &snap.network);
    if let Some(ovn) = &snap.ovn {
        section_line(&mut out, "ovn", ovn);
    }
    section_line(&mut out, "coordinator", &snap.coordinator);
    section_line(&mut out, "node", &snap.node);
    if let Some(st) = &snap.storage.data {
        let _ = writeln!(
            out,
            "\nVOLUMES ({}, backend {})",
            st.volumes.len(),
            st.backend
        );
        for p in &st.pools {
            let mib = |b: Option<u64>| b.map_or("?".into(), |b| format!("{} MiB", b >> 20));
            let _ = writeln!(
                out,
                "  pool {} on {} ({}): free {} of {}",
                p.name,
                p.node,
                p.kind,
                mib(p.free_bytes),
                mib(p.total_bytes)
            );
        }
        if !st.volumes.is_empty() {
            let _ = writeln!(
                out,
                "    {:<40} {:>12}  {:<12} {:<9} {:<6} PUBLISHED",
                "VOLUME", "SIZE", "DEVICE", "USED", "STAGED"
            );
        }
        for v in &st.volumes {
            let mark = if v.healthy { "✓" } else { "✗" };
            let dev = v.device.as_deref().unwrap_or("-");
            let used = match (v.fs_used_bytes, v.fs_total_bytes) {
                (Some(u), Some(t)) if t > 0 => format!("{}%", u * 100 / t),
                _ => "-".into(),
            };
            let _ = write!(
                out,
                "  {mark} {:<40} {:>8} MiB  {dev:<12} {used:<9} {:<6} {}",
                v.id,
                v.size_bytes >> 20,
                v.staged_paths.len(),
                v.published_paths.len()
            );
            if wide {
                let _ = write!(
                    out,
                    "  [{}] staged={:?} published={:?}",
                    v.condition, v.staged_paths, v.published_paths
                );
            }
            out.push('\n');
        }
    }
    if let Some(r) = snap
        .network
        .data
        .as_ref()
        .and_then(|n| n.reconciler.as_ref())
    {
        let _ = writeln!(out, "\nNETWORK RECONCILER\n  {}", reconciler_line(r, snap));
        for p in &r.problems {
            let _ = writeln!(out, "    {p}");
        }
    }
    if let Some(c) = &snap.coordinator.data {
        let lease = match (c.lease_valid, c.lease_left_ms) {
            (true, Some(ms)) => format!("lease valid ({ms} ms left)"),
            _ => "no valid lease".into(),
        };
        let _ = writeln!(
            out,
            "\nCOORDINATOR {} ({}, {lease}, {} session(s))",
            c.url, c.session, c.sessions
        );
        if let Some(e) = c.last_error.as_ref().filter(|_| c.session != "connected") {
            let _ = writeln!(out, "  last error: {e}");
        }
    }
    let held = snap.network.data.as_ref().map(|n| &n.floating_ips).or(snap
        .coordinator
        .data
        .as_ref()
        .map(|c| &c.floating_ips));
    if let Some(ips) = held {
        let _ = writeln!(out, "\nFLOATING IPS ({})", ips.len());
        if !ips.is_empty() {
            let _ = writeln!(out, "  {:<40} {:<16} EPOCH", "ADDRESS", "DEV");
        }
        for f in ips {
            let epoch = f.epoch.map_or("-".into(), |e| e.to_string());
            let _ = writeln!(out, "  {:<40} {:<16} {epoch}", f.address, f.dev);
        }
    }
    if let Some(n) = &snap.network.data {
        if wide {
            out.push_str("\nLINKS\n");
            for l in &n.links {
                let state = if l.up { "up" } else { "down" };
                let owned = if l.owned { " (hearth)" } else { "" };
                let mtu = l.mtu.map_or("-".into(), |m| m.to_string());
                let _ = writeln!(out, "  {:<16} {state:<5} mtu {mtu}{owned}", l.name);
            }
        }
    }
    if let Some(d) = &snap.drbd.data {
        let _ = writeln!(out, "\nDRBD ({} resources)", d.resources.len());
        for r in &d.resources {
            let _ = writeln!(
                out,
                "  {} {} disk {}",
                r.name,
                r.role,
                r.disk_states.join(",")
            );
            for p in &r.peers {
                let _ = writeln!(
                    out,
                    "    peer {:<16} {:<12} {} peer-disk {} out-of-sync {} KiB",
                    p.name,
                    p.connection,
                    p.replication.join(","),
                    p.peer_disk_states.join(","),
                    p.out_of_sync_kib
                );
            }
        }
    }
    if !snap.csi.operations.is_empty() {
        out.push_str("\nCSI CALLS\n");
        for (m, op) in &snap.csi.operations {
            let errors: u64 = op.errors.values().sum();
            let _ = writeln!(out, "  {m:<50} {:>6} calls {errors:>4} errors", op.count);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::snapshot::Check;

    #[test]
    fn failing_checks_show_reason_and_hint() {
        let snap = Snapshot {
            checks: vec![Check {
                name: "backend".into(),
                ok: false,
                required: true,
                reason: "unreachable".into(),
                hint: Some("check LINSTOR".into()),
            }],
            ..Snapshot::default()
        };
        let text = render(&snap, false);
        assert!(text.contains("✗ backend"));
        assert!(text.contains("→ check LINSTOR"));
    }
}
