use std::collections::HashMap;
use std::sync::Mutex;

use super::*;
use crate::model::LinkKind;
use crate::netlink::fake::FakeNetlink;
use crate::netlink::Owner;
use crate::render::render;
use crate::spec::parse;
use crate::LINK_ALIAS;

/// A recording fake of `/proc/sys`.
#[derive(Default)]
struct FakeSysctls(Mutex<HashMap<String, String>>);

impl Sysctls for FakeSysctls {
    fn read(&self, path: &str) -> Result<String, SysctlError> {
        self.0
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| SysctlError::Read {
                path: path.into(),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            })
    }
    fn write(&self, path: &str, value: &str) -> Result<(), SysctlError> {
        self.0.lock().unwrap().insert(path.into(), value.into());
        Ok(())
    }
}

const FILE: &str = r#"
links:
  - {name: veth-a, kind: veth, peer: veth-b, master: br-ext}
  - {name: br-ext, kind: bridge, mtu: 1500}
  - {name: mv0, kind: macvlan, parent: br-ext}
addresses:
  - {address: 192.0.2.10/24, dev: br-ext}
routes:
  - {dst: 10.244.0.0/16, via: 192.0.2.1, dev: br-ext}
  - {dst: 10.245.0.0/16, dev: eth9}
rules:
  - {priority: 100, from: 10.9.0.0/16, table: 100}
sysctls:
  net.ipv4.ip_forward: "1"
interfaceSysctls:
  br-ext: {ipv4.rp_filter: "0"}
"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn from_empty_in_dependency_order_then_a_second_pass_writes_nothing() {
    let desired = render(&parse(FILE).unwrap());
    let nl = FakeNetlink::default();
    let sys = FakeSysctls::default();
    let out = rt().block_on(converge(&nl, &sys, &desired, false)).unwrap();
    let ops = nl.sent();
    let created: Vec<&str> = ops
        .iter()
        .filter_map(|o| match o {
            Op::CreateLink { link, .. } => Some(link.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        created,
        ["br-ext", "veth-a", "mv0"],
        "masters and parents first"
    );
    let marked = ops
        .iter()
        .filter(|o| matches!(o, Op::SetLink { alias: Some(a), .. } if a == LINK_ALIAS))
        .count();
    assert_eq!(
        marked, 3,
        "br-ext, veth-a and mv0 are marked; the undeclared peer veth-b is left alone"
    );
    assert!(
        ops.iter().any(|o| matches!(o, Op::SetLink { name, alias: None, up: Some(true), .. } if name == "veth-b")),
        "the undeclared peer comes up with its pair: {ops:?}"
    );
    assert!(matches!(
        ops.iter()
            .find(|o| matches!(o, Op::CreateLink { link, .. } if link.name == "veth-a")),
        Some(Op::CreateLink {
            master: Some(_),
            ..
        })
    ));
    // eth9 does not exist: that one route fails, the rest goes on.
    assert_eq!(out.report.failures.len(), 1, "{:?}", out.report.failures);
    assert!(out.report.failures[0]
        .to_string()
        .contains("device eth9 not found"));
    assert_eq!(sys.read("net/ipv4/conf/br-ext/rp_filter").unwrap(), "0");

    let before = nl.sent().len();
    let mut desired = desired;
    desired
        .routes
        .retain(|r| r.nexthops[0].dev.as_deref() != Some("eth9"));
    let again = rt().block_on(converge(&nl, &sys, &desired, false)).unwrap();
    assert!(again.plan.actions.is_empty(), "{}", again.plan);
    assert_eq!(again.report.writes, 0);
    assert_eq!(
        nl.sent().len(),
        before,
        "the second pass makes no netlink writes"
    );
}

#[test]
fn dry_run_writes_nothing() {
    let desired = render(&parse(FILE).unwrap());
    let nl = FakeNetlink::default();
    let out = rt()
        .block_on(converge(&nl, &FakeSysctls::default(), &desired, true))
        .unwrap();
    assert!(!out.plan.actions.is_empty());
    assert!(nl.sent().is_empty());
}

#[test]
fn removing_everything_deletes_only_owned_objects() {
    let desired = render(&parse(FILE).unwrap());
    let nl = FakeNetlink::default();
    let sys = FakeSysctls::default();
    rt().block_on(converge(&nl, &sys, &desired, false)).unwrap();
    {
        let mut s = nl.state.lock().unwrap();
        let mut foreign = s.routes[0].clone();
        foreign.item.key.dst = "10.7.0.0/16".parse().unwrap();
        foreign.owner = Owner::Foreign;
        s.routes.push(foreign);
        let mut eth0 = s.links[0].clone();
        eth0.link.name = "eth0".into();
        eth0.link.kind = LinkKind::Other("e1000".into());
        eth0.owned = false;
        eth0.index = 77;
        s.links.push(eth0);
    }
    rt().block_on(converge(&nl, &sys, &Desired::default(), false))
        .unwrap();
    let s = nl.state.lock().unwrap();
    assert_eq!(
        s.links
            .iter()
            .map(|l| l.link.name.as_str())
            .collect::<Vec<_>>(),
        ["eth0"]
    );
    assert_eq!(s.routes.len(), 1);
    assert_eq!(s.routes[0].owner, Owner::Foreign);
    assert!(s.rules.is_empty());
}

#[test]
fn recreated_links_get_their_addresses_back_in_the_same_apply() {
    let desired = render(&parse(FILE).unwrap());
    let nl = FakeNetlink::default();
    let sys = FakeSysctls::default();
    rt().block_on(converge(&nl, &sys, &desired, false)).unwrap();
    nl.state
        .lock()
        .unwrap()
        .links
        .iter_mut()
        .find(|l| l.link.name == "br-ext")
        .unwrap()
        .link
        .kind = LinkKind::Other("dummy".into());
    rt().block_on(converge(&nl, &sys, &desired, false)).unwrap();
    let s = nl.state.lock().unwrap();
    assert!(s
        .addresses
        .iter()
        .any(|a| a.item.dev == "br-ext" && a.owner == Owner::Hearth));
    assert!(s
        .links
        .iter()
        .any(|l| l.link.name == "br-ext" && l.link.kind == LinkKind::Bridge));
}
