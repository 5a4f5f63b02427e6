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
    if snap.network.state != SectionState::NotConfigured {
        out.push(check("network", true, network(snap)));
    }
    if let Some(reg) = snap
        .kubelet_registration
        .as_ref()
        .and_then(|s| s.data.as_ref())
    {
        out.push(check(
            "kubelet_registration",
            true,
            kubelet_registration(reg),
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
        let notes: Vec<&str> = ovn
            .data
            .as_ref()
            .and_then(|d| d.get("notes"))
            .and_then(serde_json::Value::as_array)
            .map(|n| n.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        out.push(check(
            "ovn_gateway",
            false,
            if notes.is_empty() {
                Ok("the join gateway answers".into())
            } else {
                Err((
                    notes.join("; "),
                    "create the OVN logical router port with the join gateway's address \
                     (`ovn-nbctl lrp-list`), or check ovn-controller's log"
                        .into(),
                ))
            },
        ));
    }
    out
}

/// How long past its resync period a converged reconciler may go without a pass before it
/// counts as stuck: twice the period plus this margin (a pass can wait on OVSDB or netlink).
const STALE_MARGIN_SECONDS: f64 = 30.0;

/// The required network state: the dump worked, the reconciler's last pass (when one runs in
/// this process) is recent and left no failure or conflict, and every link Hearth owns is up.
fn network(snap: &Snapshot) -> Result<String, (String, String)> {
    let net = &snap.network;
    let Some(data) = net.data.as_ref().filter(|_| net.state == SectionState::Ok) else {
        return Err((
            format!(
                "network state unknown: {}",
                net.reason.as_deref().unwrap_or("?")
            ),
            "netlink dump failed: check the agent runs with CAP_NET_ADMIN".into(),
        ));
    };
    let mut verified = String::new();
    if let Some(r) = &data.reconciler {
        let log = "read the agent's log (target hearth_agent::net)";
        if let Some(why) = &r.stopped {
            return Err((
                format!("the network reconciler stopped: {why}"),
                format!("{log}; the agent must be restarted once the cause is fixed"),
            ));
        }
        let Some(at) = r.last_pass_unix else {
            return Err((
                "the network reconciler has not finished its first pass".into(),
                format!("it runs at start; if this lasts, {log}"),
            ));
        };
        let age = (snap.collected_at_unix - at).max(0.0);
        let stale = 2.0 * r.resync_seconds + STALE_MARGIN_SECONDS;
        if r.failures > 0 || r.conflicts > 0 {
            let hint = if r.failures > 0 {
                format!("it retries with backoff; {log}, `ip monitor` and the devices the --network file names")
            } else {
                "an object Hearth does not own blocks a desired one: remove it, or change the --network file; the reconciler looks again at its next resync, or at once on SIGHUP".into()
            };
            return Err((
                format!(
                    "the network reconciler has not converged: last pass {age:.0}s ago had {} failure(s), {} conflict(s): {}",
                    r.failures,
                    r.conflicts,
                    r.problems.join("; ")
                ),
                hint,
            ));
        }
        if age > stale {
            return Err((
                format!(
                    "the network reconciler's last pass was {age:.0}s ago (it passes every {:.0}s)",
                    r.resync_seconds
                ),
                format!("the reconciler looks stuck: {log}"),
            ));
        }
        verified = format!("network reconciler converged {age:.0}s ago; ");
    }
    let down: Vec<&str> = data
        .links
        .iter()
        .filter(|l| l.owned && !l.up)
        .map(|l| l.name.as_str())
        .collect();
    if down.is_empty() {
        Ok(format!("{verified}links Hearth owns are up"))
    } else {
        Err((
            format!("links Hearth owns are down: {}", down.join(", ")),
            "the network reconciler has not converged: read its log and `ip link`".into(),
        ))
    }
}

/// Registered with kubelet: kubelet notified success for the driver.
fn kubelet_registration(
    reg: &super::snapshot::KubeletRegistration,
) -> Result<String, (String, String)> {
    match reg.state.as_str() {
        "registered" => Ok(format!(
            "kubelet registered {} ({})",
            reg.driver, reg.socket
        )),
        "error" => Err((
            format!(
                "kubelet refused to register {}: {}",
                reg.driver,
                reg.error.as_deref().unwrap_or("?")
            ),
            format!(
                "kubelet could not use the CSI socket {} it was given: check \
                 --kubelet-registration-path against kubelet's path, and kubelet's log",
                reg.endpoint
            ),
        )),
        _ => Err((
            format!(
                "kubelet has not registered {} yet (GetInfo called {} time(s))",
                reg.driver, reg.get_info_calls
            ),
            format!(
                "kubelet watches KUBELET_DIR/plugins_registry: check that {} lies in the \
                 directory kubelet watches (--kubelet-registration-dir)",
                reg.socket
            ),
        )),
    }
}

/// The failing required checks, for `/readyz`.
pub fn not_ready(snap: &Snapshot) -> Vec<&Check> {
    snap.checks.iter().filter(|c| c.required && !c.ok).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::snapshot::{LinkHealth, Network, Reconciler, Section};

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

    fn with_reconciler(r: Option<Reconciler>) -> Check {
        let snap = Snapshot {
            collected_at_unix: 1000.0,
            network: Section::ok(Network {
                links: vec![LinkHealth {
                    name: "br-ext".into(),
                    up: true,
                    mtu: None,
                    owned: true,
                }],
                reconciler: r,
                ..Network::default()
            }),
            ..Snapshot::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let checks = evaluate(&snap, &dir.path().join("none.sock"), dir.path());
        let net = checks.into_iter().find(|c| c.name == "network");
        let net = net.expect("network check");
        assert!(net.required);
        assert_eq!(net.ok, net.hint.is_none(), "{net:?}");
        net
    }

    fn pass(age: f64, failures: u32, conflicts: u32) -> Option<Reconciler> {
        Some(Reconciler {
            last_pass_unix: Some(1000.0 - age),
            converged: failures == 0 && conflicts == 0,
            failures,
            conflicts,
            problems: vec!["! route 10.0.0.0/8: a foreign route; left alone".into()],
            resync_seconds: 30.0,
            stopped: None,
        })
    }

    #[test]
    fn network_readiness_follows_the_reconciler() {
        let ok = with_reconciler(pass(5.0, 0, 0));
        assert!(ok.ok && ok.reason.contains("converged 5s ago"), "{ok:?}");
        // Without a reconciler in this process, only the links count.
        assert!(with_reconciler(None).ok);

        let first = with_reconciler(Some(Reconciler::default()));
        assert!(
            !first.ok && first.reason.contains("first pass"),
            "{first:?}"
        );

        let blocked = with_reconciler(pass(5.0, 0, 1));
        assert!(!blocked.ok && blocked.reason.contains("1 conflict(s)"));
        assert!(blocked.reason.contains("foreign route"));
        assert!(blocked
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("does not own"));

        let failing = with_reconciler(pass(5.0, 2, 0));
        assert!(!failing.ok && failing.reason.contains("2 failure(s)"));

        let stale = with_reconciler(pass(91.0, 0, 0));
        assert!(!stale.ok && stale.reason.contains("91s ago"), "{stale:?}");
        assert!(with_reconciler(pass(89.0, 0, 0)).ok);

        let stopped = with_reconciler(Some(Reconciler {
            stopped: Some("netlink: permission denied".into()),
            ..pass(5.0, 0, 0).expect("some")
        }));
        assert!(!stopped.ok && stopped.reason.contains("stopped: netlink"));
    }
}

#[cfg(test)]
mod ovn_tests {
    use std::sync::Arc;

    use crate::health::snapshot::{Section, SectionState, Snapshot};

    fn with_ovn(notes: &[&str]) -> Snapshot {
        Snapshot {
            ovn: Some(Section {
                state: SectionState::Ok,
                reason: None,
                data: Some(
                    serde_json::json!({ "gatewayReachable": notes.is_empty(), "notes": notes }),
                ),
            }),
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_join_gateway_without_a_router_is_advisory_not_a_readiness_failure() {
        let mut snap = with_ovn(&["no complete neighbour entry for 100.64.0.1 on ovn0 yet"]);
        snap.checks = super::evaluate(&snap, std::path::Path::new("/"), std::path::Path::new("/"));
        let gw = snap
            .checks
            .iter()
            .find(|c| c.name == "ovn_gateway")
            .unwrap();
        assert!(!gw.ok && !gw.required, "{gw:?}");
        assert!(super::not_ready(&snap)
            .iter()
            .all(|c| c.name != "ovn" && c.name != "ovn_gateway"));
    }

    #[test]
    fn the_ovn_section_has_a_section_up_series() {
        let text = crate::health::metrics::render(Arc::new(with_ovn(&[])), Default::default());
        assert!(
            text.contains("hearth_section_up{section=\"ovn\"} 1"),
            "{text}"
        );
    }
}
