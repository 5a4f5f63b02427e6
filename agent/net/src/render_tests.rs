use super::*;
use crate::spec::parse;

fn lines(d: &Desired) -> String {
    let mut out = Vec::new();
    out.extend(d.sysctls.iter().map(ToString::to_string));
    out.extend(
        d.links
            .iter()
            .map(|l| format!("{l}{}", if l.implied { " implied" } else { "" })),
    );
    out.extend(d.interface_sysctls.iter().map(ToString::to_string));
    out.extend(d.addresses.iter().map(ToString::to_string));
    out.extend(d.routes.iter().map(ToString::to_string));
    out.extend(d.neighbours.iter().map(ToString::to_string));
    out.extend(d.rules.iter().map(ToString::to_string));
    out.extend(
        d.floating_ips
            .iter()
            .map(|f| format!("floating {} dev {}", f.address, f.dev)),
    );
    out.join("\n")
}

const FILE: &str = r#"
links:
  - {name: br-ext, kind: bridge, mtu: 1500, up: true}
  - {name: veth-a, kind: veth, peer: veth-b, master: br-ext}
  - {name: vx0, kind: vxlan, vni: 42, local: 192.0.2.10, remote: 192.0.2.11, dev: br-ext, learning: false}
  - {name: mv0, kind: macvlan, parent: br-ext, mode: private, up: false, mac: "0a:00:00:00:00:01"}
addresses:
  - {address: 192.0.2.10/24, dev: br-ext}
  - {address: "2001:db8::10/64", dev: br-ext, nodad: true}
routes:
  - {dst: 10.244.0.0/16, via: 100.64.0.1, dev: ovn0, table: 254, metric: 100}
  - {dst: default, via: "2001:db8::1"}
  - {dst: default, via: 192.0.2.1, src: 192.0.2.10}
  - {dst: 10.246.0.0/16, multipath: [{via: 192.0.2.2}, {via: 192.0.2.1, weight: 3, dev: br-ext}]}
  - {dst: 10.99.0.0/16, type: unreachable, table: 100}
neighbours:
  - {address: 192.0.2.50, dev: br-ext, mac: "02:00:00:00:00:50"}
  - {address: "2001:db8::51", dev: br-ext, proxy: true}
rules:
  - {priority: 100, from: 10.9.0.0/16, table: 100}
  - {priority: 101, fwmark: "0x10/0xff"}
  - {priority: 102, family: ipv6, action: prohibit}
sysctls:
  net.ipv4.ip_forward: "1"
  net/ipv4/ip_local_port_range: "32768   60999"
interfaceSysctls:
  br-ext: {ipv4.rp_filter: 0, ipv6.neigh.retrans_time_ms: "500"}
floatingIPs:
  - {address: 203.0.113.7, dev: br-ext}
"#;

/// The golden render: defaults, implied peers, normalized sysctls and route families.
#[test]
fn golden_render() {
    let got = lines(&render(&parse(FILE).unwrap()));
    let want = "\
sysctl net.ipv4.ip_forward = 1
sysctl net.ipv4.ip_local_port_range = 32768 60999
link br-ext (bridge, mtu 1500, up)
link veth-a (veth, peer veth-b, master br-ext, up)
link vx0 (vxlan, vni 42, port 4789, local 192.0.2.10, remote 192.0.2.11, dev br-ext, nolearning, up)
link mv0 (macvlan, parent br-ext, private, mac 0a:00:00:00:00:01, down)
link veth-b (veth, peer veth-a, up) implied
sysctl net.ipv4.conf.br-ext.rp_filter = 0
sysctl net.ipv6.neigh.br-ext.retrans_time_ms = 500
address 192.0.2.10/24 dev br-ext
address 2001:db8::10/64 dev br-ext nodad
route 10.244.0.0/16 via 100.64.0.1 dev ovn0 table 254 metric 100
route ::/0 via 2001:db8::1 table 254 metric 1024
route 0.0.0.0/0 via 192.0.2.1 src 192.0.2.10 table 254 metric 0
route 10.246.0.0/16 nexthop via 192.0.2.1 dev br-ext weight 3 nexthop via 192.0.2.2 weight 1 table 254 metric 0
route unreachable 10.99.0.0/16 table 100 metric 0
neighbour 192.0.2.50 dev br-ext lladdr 02:00:00:00:00:50
neighbour proxy 2001:db8::51 dev br-ext
rule priority 100 from 10.9.0.0/16 lookup 100
rule priority 101 fwmark 0x10/0xff lookup 254
rule -6 priority 102 prohibit
floating 203.0.113.7 dev br-ext";
    assert_eq!(got, want, "\n--- got ---\n{got}\n");
}

#[test]
fn render_is_deterministic() {
    let f = parse(FILE).unwrap();
    assert_eq!(render(&f), render(&f));
}
