//! Readiness and health checks derived from a snapshot. Each failing check says what is wrong
//! and what to look at. Owns the rules only; reads the socket and state directory metadata.

use std::path::Path;

use super::snapshot::{Check, SectionState, Snapshot};

fn check(name: &str, required: bool, result: Result<String, (String, String)>) -> Check {
    match result {
        Ok(reason) => Check {
            name: name.into(),
            ok: true,
            required,
            reason,
            hint: None,
        },
        Err((reason, hint)) => Check {
            name: name.into(),
            ok: false,
            required,
            reason,
            hint: Some(hint),
        },
    }
}

/// All checks for `snap`; `/readyz` passes when every required one does.
pub fn evaluate(snap: &Snapshot, socket: &Path, state_dir: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(check(
        "csi_socket",
        true,
        if socket.exists() {
            Ok(format!("CSI socket {} is served", socket.display()))
        } else {
            Err((
                format!("CSI socket {} does not exist", socket.display()),
                "the gRPC server did not start or was stopped: read the agent's log".into(),
            ))
        },
    ));
    out.push(check(
        "state_dir",
        true,
        nix::unistd::access(state_dir, nix::unistd::AccessFlags::W_OK)
            .map(|()| format!("state directory {} is writable", state_dir.display()))
            .map_err(|e| {
                (
                    format!(
                        "state directory {} is not writable: {e}",
                        state_dir.display()
                    ),
                    "check the volume mounted there, its free space and permissions".into(),
                )
            }),
    ));
    let st = &snap.storage;
    out.push(check(
        "backend",
        true,
        match (&st.state, &st.data) {
            (SectionState::Ok, Some(s)) => Ok(format!(
                "{} backend answered ({} volumes)",
                s.backend,
                s.volumes.len()
            )),
            _ => Err((
                format!(
                    "storage backend unreachable: {}",
                    st.reason.as_deref().unwrap_or("?")
                ),
                "check --linstor-url, the LINSTOR controller's health and the network to it".into(),
            )),
        },
    ));
    let abnormal: Vec<&str> = st
        .data
        .iter()
        .flat_map(|s| &s.volumes)
        .filter(|v| !v.healthy)
        .map(|v| v.id.as_str())
        .collect();
    out.push(check(
        "volumes",
        false,
        if abnormal.is_empty() {
            Ok("no volume reports an abnormal condition".into())
        } else {
            Err((
                format!(
                    "{} volume(s) abnormal: {}",
                    abnormal.len(),
                    abnormal.join(", ")
                ),
                "`hearth status --output wide` shows each condition; for DRBD see the drbd section"
                    .into(),
            ))
        },
    ));
    let net = &snap.network;
    if net.state != SectionState::NotConfigured {
        let down: Vec<&str> = net
            .data
            .iter()
            .flat_map(|n| &n.links)
            .filter(|l| l.owned && !l.up)
            .map(|l| l.name.as_str())
            .collect();
        out.push(check(
            "network",
            true,
            match (&net.state, down.is_empty()) {
                (SectionState::Ok, true) => Ok("links Hearth owns are up".into()),
                (SectionState::Ok, false) => Err((
                    format!("links Hearth owns are down: {}", down.join(", ")),
                    "the network reconciler has not converged: read its log and `ip link`".into(),
                )),
                _ => Err((
                    format!(
                        "network state unknown: {}",
                        net.reason.as_deref().unwrap_or("?")
                    ),
                    "netlink dump failed: check the agent runs with CAP_NET_ADMIN".into(),
                )),
            },
        ));
    }
    if let Some(ovn) = &snap.ovn {
        out.push(check(
            "ovn",
            true,
            match ovn.state {
                SectionState::Ok => Ok("chassis registered, ovn-controller caught up, ovn0 up".into()),
                _ => Err((
                    format!("OVN chassis not healthy: {}", ovn.reason.as_deref().unwrap_or("?")),
                    "check ovn-controller's log, `ovn-sbctl list Chassis` and the ovn: section of the network file"
                        .into(),
                )),
            },
        ));
    }
    out
}

/// The failing required checks, for `/readyz`.
pub fn not_ready(snap: &Snapshot) -> Vec<&Check> {
    snap.checks.iter().filter(|c| c.required && !c.ok).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::snapshot::Section;

    #[test]
    fn unreachable_backend_fails_with_a_hint() {
        let snap = Snapshot {
            storage: Section::without(SectionState::Error, "connection refused"),
            ..Snapshot::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let checks = evaluate(&snap, &dir.path().join("none.sock"), dir.path());
        let backend = checks
            .iter()
            .find(|c| c.name == "backend")
            .expect("backend check");
        assert!(!backend.ok && backend.required);
        assert!(backend.reason.contains("connection refused"));
        assert!(backend.hint.is_some());
        let socket = checks
            .iter()
            .find(|c| c.name == "csi_socket")
            .expect("socket check");
        assert!(!socket.ok);
        assert!(checks.iter().all(|c| c.name != "network"));
    }
}
