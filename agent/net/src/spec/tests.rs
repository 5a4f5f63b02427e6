use super::*;

/// The example of DESIGN.md's contract, verbatim.
pub(crate) const CONTRACT: &str = r#"
links:
  - {name: br-ext, kind: bridge, mtu: 1500, up: true}          # kind: bridge | veth | vxlan | macvlan
  - {name: veth-a, kind: veth, peer: veth-b, master: br-ext, up: true}
addresses:
  - {address: 192.0.2.10/24, dev: br-ext}
routes:
  - {dst: 10.244.0.0/16, via: 100.64.0.1, dev: ovn0, table: 254, metric: 100}
sysctls:
  net.ipv4.ip_forward: "1"
floatingIPs:                                                   # announced with GARP / unsolicited NA
  - {address: 203.0.113.7, dev: br-ext}
ovn:                                                           # Open_vSwitch external_ids and the join port
  ovsdb: unix:/run/openvswitch/db.sock
  systemId: node-a
  remote: tcp:10.0.0.1:6642
  encapType: geneve
  encapIP: 10.0.0.11
  bridgeMappings: {physnet1: br-ext}
  datapathType: system                                         # netdev where there is no OVS kernel module
  join: {name: ovn0, mac: "0a:00:00:64:00:02", address: 100.64.0.2/16, gateway: 100.64.0.1, mtu: 1400}
"#;

fn err(text: &str) -> String {
    parse(text).expect_err(text).to_string()
}

#[test]
fn the_contract_example_parses() {
    let f = parse(CONTRACT).unwrap();
    assert_eq!(f.links.len(), 2);
    assert_eq!(f.routes[0].metric, Some(100));
    assert_eq!(f.floating_ips[0].dev.0, "br-ext");
    assert!(f.ovn.is_some());
}

#[test]
fn empty_files_and_null_sections_are_empty_states() {
    assert!(parse("").unwrap().links.is_empty());
    assert!(parse("# nothing\n").unwrap().routes.is_empty());
    assert!(parse("links:\nroutes: ~\n").unwrap().links.is_empty());
}

#[test]
fn errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        ("links:\n  - {name: x, kind: tap}\n", "links[0].kind"),
        ("links:\n  - {name: x, kind: bridge, mtu: 10}\n", "links[0].mtu"),
        ("links:\n  - {name: x, kind: veth}\n", "links[0].peer"),
        ("links:\n  - {name: x, kind: bridge, vni: 3}\n", "links[0].vni: only for kind vxlan"),
        ("links:\n  - {name: x, kind: vxlan}\n", "links[0].vni: required"),
        ("links:\n  - {name: x, kind: macvlan}\n", "links[0].parent"),
        ("links:\n  - {name: a-name-that-is-too-long, kind: bridge}\n", "links[0].name"),
        ("links:\n  - {name: x, kind: bridge}\n  - {name: x, kind: bridge}\n", "links[1].name"),
        ("addresses:\n  - {address: 192.0.2.300/24, dev: x}\n", "addresses[0].address"),
        ("addresses:\n  - {address: 192.0.2.1/24, dev: x, nodad: true}\n", "addresses[0].nodad"),
        ("routes:\n  - {dst: 10.0.0.1/8, dev: x}\n", "routes[0].dst: 10.0.0.1/8 has host bits set"),
        ("routes:\n  - {dst: 10.0.0.0/8}\n", "routes[0]: a unicast route needs"),
        ("routes:\n  - {dst: 10.0.0.0/8, via: \"2001:db8::1\"}\n", "routes[0].via: is IPv6"),
        ("routes:\n  - {dst: 10.0.0.0/8, dev: x, table: 0}\n", "routes[0].table"),
        ("routes:\n  - {dst: 10.0.0.0/8, type: blackhole, dev: x}\n", "routes[0]: a blackhole"),
        ("routes:\n  - {dst: 10.0.0.0/8, multipath: [{via: 10.1.1.1, weight: 300}]}\n", "routes[0].multipath[0].weight"),
        ("routes:\n  - {dst: 10.0.0.0/8, dev: a}\n  - {dst: 10.0.0.0/8, dev: b}\n", "routes[1]: duplicate of routes[0]"),
        ("routes:\n  - {dst: 10.0.0.0/8, dev: a, bogus: 1}\n", "routes[0]: unknown field `bogus`"),
        ("neighbours:\n  - {address: 10.0.0.1, dev: x}\n", "neighbours[0].mac"),
        ("neighbours:\n  - {address: 10.0.0.1, dev: x, proxy: true, mac: \"02:00:00:00:00:01\"}\n", "neighbours[0].mac"),
        ("rules:\n  - {priority: 1, from: 10.0.0.0/8, to: \"2001:db8::/32\"}\n", "rules[0].to"),
        ("rules:\n  - {priority: 1, action: blackhole, table: 5}\n", "rules[0].table"),
        ("rules:\n  - {from: 10.0.0.0/8}\n", "rules[0]: missing field `priority`"),
        ("sysctls:\n  kernel.panic: \"1\"\n", "sysctls.kernel.panic"),
        ("interfaceSysctls:\n  eth0: {rp_filter: \"1\"}\n", "interfaceSysctls.eth0.rp_filter"),
        ("floatingIPs:\n  - {address: 224.0.0.1, dev: x}\n", "floatingIPs[0].address"),
        ("floatingIPs:\n  - {address: 10.0.0.1/32, dev: x}\n", "floatingIPs[0].address"),
        ("linkz: []\n", "unknown field `linkz`"),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
    }
}

#[test]
fn scalar_spellings() {
    let f = parse(
        "sysctls:\n  net.ipv4.ip_forward: 1\nrules:\n  - {priority: 5, fwmark: 16, table: 7}\n",
    )
    .unwrap();
    assert_eq!(f.sysctls["net.ipv4.ip_forward"].0, "1");
    assert_eq!(f.rules[0].fwmark.unwrap().mark, 16);
    assert_eq!(
        sysctl_path("net/ipv4/conf/eth0.100/rp_filter").unwrap(),
        "net/ipv4/conf/eth0.100/rp_filter"
    );
    assert_eq!(
        interface_sysctl_path("br0", "ipv6.neigh.retrans_time_ms").unwrap(),
        "net/ipv6/neigh/br0/retrans_time_ms"
    );
}

proptest::proptest! {
    /// Outside input never panics the parser; it is either a state or an error.
    #[test]
    fn parse_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    /// Route lines built from arbitrary pieces never panic and, when accepted, have a family
    /// that agrees across dst and via.
    #[test]
    fn routes_are_consistent(dst in "[0-9a-f:./]{0,24}", via in "[0-9a-f:.]{0,20}") {
        let text = format!("routes:\n  - {{dst: \"{dst}\", via: \"{via}\"}}\n");
        if let Ok(f) = parse(&text) {
            let r = &f.routes[0];
            if let (Dst::Prefix(p), Some(v)) = (r.dst, r.via) {
                proptest::prop_assert_eq!(p.is_v6(), v.is_ipv6());
            }
        }
    }
}

#[test]
fn a_bad_ip_in_the_ovn_section_names_field_value_and_line() {
    let text =
        "links: []\novn:\n  systemId: a\n  remote: tcp:10.0.0.1:6642\n  encapIP: 10.0.0.300\n";
    let e = err(text);
    assert!(e.contains("ovn.encapIP"), "{e}");
    assert!(e.contains("\"10.0.0.300\" is not an IP address"), "{e}");
    assert!(e.contains("line 5"), "{e}");
}
