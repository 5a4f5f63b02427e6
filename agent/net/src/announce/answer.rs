//! Answers to neighbour discovery, built and parsed byte by byte (pure): an ARP request for a
//! held IPv4 address gets an ARP reply, an IPv6 neighbour solicitation for a held address
//! gets a solicited neighbour advertisement (RFC 4861 §7.2.4). Nothing here touches a socket.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::frame::{icmpv6_checksum, ALL_NODES_MAC};

const ETH_P_ARP: [u8; 2] = [0x08, 0x06];
const ETH_P_IPV6: [u8; 2] = [0x86, 0xdd];
const ICMPV6: u8 = 58;
const NS: u8 = 135;
const NA: u8 = 136;

/// An ARP request (Ethernet, IPv4) as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRequest {
    /// The asker's MAC (the ARP sender hardware address).
    pub sender_mac: [u8; 6],
    /// The asker's IPv4 address (0.0.0.0 for an RFC 5227 probe).
    pub sender_ip: Ipv4Addr,
    /// The address asked for.
    pub target: Ipv4Addr,
}

/// Parses an Ethernet frame as an ARP request; `None` for anything else.
pub fn parse_arp_request(frame: &[u8]) -> Option<ArpRequest> {
    let arp = frame.get(14..42)?;
    if frame.get(12..14)? != ETH_P_ARP || arp[0..6] != [0, 1, 8, 0, 6, 4] || arp[6..8] != [0, 1] {
        return None;
    }
    let mut sender_mac = [0u8; 6];
    sender_mac.copy_from_slice(&arp[8..14]);
    let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    Some(ArpRequest {
        sender_mac,
        sender_ip: ip(&arp[14..18]),
        target: ip(&arp[24..28]),
    })
}

/// The ARP reply to `req` saying `req.target` is at `mac`, sent to the asker alone.
pub fn arp_reply(mac: [u8; 6], req: &ArpRequest) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&req.sender_mac);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&req.target.octets());
    f.extend_from_slice(&req.sender_mac);
    f.extend_from_slice(&req.sender_ip.octets());
    f.resize(60, 0);
    f
}

/// A neighbour solicitation as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicitation {
    /// The Ethernet source of the frame.
    pub eth_src: [u8; 6],
    /// The IPv6 source (`::` for duplicate address detection).
    pub src: Ipv6Addr,
    /// The address asked for.
    pub target: Ipv6Addr,
    /// The source link-layer address option, if present.
    pub source_mac: Option<[u8; 6]>,
}

fn v6(b: &[u8]) -> Option<Ipv6Addr> {
    let octets: [u8; 16] = b.get(..16)?.try_into().ok()?;
    Some(Ipv6Addr::from(octets))
}

/// Parses an Ethernet frame as a neighbour solicitation (no extension headers, hop limit 255,
/// code 0, a correct checksum); `None` for anything else.
pub fn parse_solicitation(frame: &[u8]) -> Option<Solicitation> {
    if frame.get(12..14)? != ETH_P_IPV6 {
        return None;
    }
    let ip = frame.get(14..54)?;
    if ip[0] >> 4 != 6 || ip[6] != ICMPV6 || ip[7] != 255 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let icmp = frame.get(54..54 + len)?;
    if len < 24 || icmp[0] != NS || icmp[1] != 0 {
        return None;
    }
    let (src, dst) = (v6(&ip[8..24])?, v6(&ip[24..40])?);
    if icmpv6_checksum(src, dst, icmp) != 0 {
        return None;
    }
    let mut source_mac = None;
    let mut opts = &icmp[24..];
    while opts.len() >= 8 {
        let olen = usize::from(opts[1]) * 8;
        if olen == 0 || olen > opts.len() {
            return None;
        }
        if opts[0] == 1 && olen == 8 {
            let mut m = [0u8; 6];
            m.copy_from_slice(&opts[2..8]);
            source_mac = Some(m);
        }
        opts = &opts[olen..];
    }
    let mut eth_src = [0u8; 6];
    eth_src.copy_from_slice(&frame[6..12]);
    Some(Solicitation {
        eth_src,
        src,
        target: v6(&icmp[8..24])?,
        source_mac,
    })
}

/// The neighbour advertisement answering `ns` for `ns.target` at `mac`: solicited and override,
/// to the asker; for duplicate address detection (source `::`) unsolicited, to all nodes.
pub fn advertisement(mac: [u8; 6], ns: &Solicitation) -> Vec<u8> {
    let dad = ns.src.is_unspecified();
    let (dst, eth_dst) = if dad {
        (Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), ALL_NODES_MAC)
    } else {
        (ns.src, ns.source_mac.unwrap_or(ns.eth_src))
    };
    let flags: u32 = if dad { 0x2000_0000 } else { 0x6000_0000 }; // S (solicited) and O
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[NA, 0, 0, 0]);
    icmp.extend_from_slice(&flags.to_be_bytes());
    icmp.extend_from_slice(&ns.target.octets());
    icmp.extend_from_slice(&[2, 1]); // option: target link-layer address
    icmp.extend_from_slice(&mac);
    let sum = icmpv6_checksum(ns.target, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&u16::try_from(icmp.len()).unwrap_or(32).to_be_bytes());
    f.extend_from_slice(&[ICMPV6, 255]);
    f.extend_from_slice(&ns.target.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The solicited-node multicast group of `ip` (ff02::1:ffXX:XXXX), which the responder joins so
/// the interface (and switches that snoop MLD) deliver solicitations for it.
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::frame;

    const OURS: [u8; 6] = [0x0a, 0, 0, 0, 0, 1];
    const THEIRS: [u8; 6] = [0x0a, 0, 0, 0, 0, 2];

    fn who_has(target: Ipv4Addr) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&THEIRS);
        f.extend_from_slice(&[8, 6, 0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&THEIRS);
        f.extend_from_slice(&[192, 0, 2, 100]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target.octets());
        f
    }

    #[test]
    fn an_arp_request_gets_a_unicast_reply() {
        let target = Ipv4Addr::new(192, 0, 2, 77);
        let req = parse_arp_request(&who_has(target)).expect("a request");
        assert_eq!(req.target, target);
        assert_eq!(req.sender_ip, Ipv4Addr::new(192, 0, 2, 100));
        let rep = arp_reply(OURS, &req);
        assert_eq!(rep.len(), 60);
        assert_eq!(&rep[0..6], &THEIRS);
        assert_eq!(&rep[6..12], &OURS);
        assert_eq!(&rep[20..22], &[0, 2]);
        assert_eq!(&rep[22..28], &OURS);
        assert_eq!(&rep[28..32], &target.octets());
        assert_eq!(&rep[32..38], &THEIRS);
        assert_eq!(&rep[38..42], &[192, 0, 2, 100]);
        // A reply is not a request, and neither is a gratuitous reply.
        assert_eq!(parse_arp_request(&rep), None);
        assert_eq!(
            parse_arp_request(&frame::gratuitous_arp(OURS, target, true)),
            None
        );
        assert_eq!(parse_arp_request(&rep[..30]), None);
    }

    fn solicitation(src: Ipv6Addr, target: Ipv6Addr, slla: bool) -> Vec<u8> {
        let dst = solicited_node(target);
        let mut icmp = vec![NS, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        if slla {
            icmp.extend_from_slice(&[1, 1]);
            icmp.extend_from_slice(&THEIRS);
        }
        let sum = icmpv6_checksum(src, dst, &icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut f = vec![0x33, 0x33, 0xff, 0, 0, 0x77];
        f.extend_from_slice(&THEIRS);
        f.extend_from_slice(&ETH_P_IPV6);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&u16::try_from(icmp.len()).unwrap().to_be_bytes());
        f.extend_from_slice(&[ICMPV6, 255]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        f.extend_from_slice(&icmp);
        f
    }

    #[test]
    fn a_solicitation_gets_a_solicited_advertisement() {
        let (src, target): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::100".parse().unwrap(),
            "2001:db8::77".parse().unwrap(),
        );
        let ns = parse_solicitation(&solicitation(src, target, true)).expect("an NS");
        assert_eq!(
            (ns.src, ns.target, ns.source_mac),
            (src, target, Some(THEIRS))
        );
        let na = advertisement(OURS, &ns);
        assert_eq!(&na[0..6], &THEIRS);
        assert_eq!(&na[22..38], &target.octets());
        assert_eq!(&na[38..54], &src.octets());
        let icmp = &na[54..];
        assert_eq!((icmp[0], icmp[4]), (NA, 0x60));
        assert_eq!(&icmp[26..32], &OURS);
        assert_eq!(icmpv6_checksum(target, src, icmp), 0);
        // Our own advertisement is not a solicitation.
        assert_eq!(parse_solicitation(&na), None);
    }

    #[test]
    fn duplicate_address_detection_is_answered_to_all_nodes() {
        let target: Ipv6Addr = "2001:db8::77".parse().unwrap();
        let ns =
            parse_solicitation(&solicitation(Ipv6Addr::UNSPECIFIED, target, false)).expect("an NS");
        let na = advertisement(OURS, &ns);
        assert_eq!(&na[0..6], &ALL_NODES_MAC);
        assert_eq!(na[54 + 4], 0x20);
    }

    #[test]
    fn a_bad_checksum_or_hop_limit_is_not_a_solicitation() {
        let (src, target): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::100".parse().unwrap(),
            "2001:db8::77".parse().unwrap(),
        );
        let mut f = solicitation(src, target, true);
        f[54 + 2] ^= 1;
        assert_eq!(parse_solicitation(&f), None);
        let mut f = solicitation(src, target, true);
        f[21] = 64;
        assert_eq!(parse_solicitation(&f), None);
    }

    #[test]
    fn the_solicited_node_group() {
        let ip: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        assert_eq!(
            solicited_node(ip),
            "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let _ = parse_arp_request(&bytes);
            let _ = parse_solicitation(&bytes);
        }
    }
}
