//! The announcement frames, built byte by byte (pure): gratuitous ARP in its request and
//! reply forms, and the unsolicited neighbour advertisement (RFC 4861 §7.2.6) with the
//! override flag, sent to all nodes.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// The Ethernet address of ff02::1 (all nodes).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;

fn ethernet(out: &mut Vec<u8>, dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    out.extend_from_slice(&ethertype.to_be_bytes());
}

/// A gratuitous ARP for `ip` at `mac`, broadcast. The request form has a zero target MAC
/// (RFC 5227 announcement); the reply form repeats the sender MAC as the target, which is
/// what Linux needs to treat a reply as gratuitous. Padded to the 60-byte Ethernet minimum.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr, reply: bool) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    ethernet(&mut f, BROADCAST, mac, ETH_P_ARP);
    f.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    f.extend_from_slice(&[6, 4]);
    f.extend_from_slice(&(if reply { 2u16 } else { 1u16 }).to_be_bytes());
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&if reply { mac } else { [0; 6] });
    f.extend_from_slice(&ip.octets());
    f.resize(60, 0);
    f
}

/// An unsolicited neighbour advertisement for `ip` at `mac`: from `ip` to ff02::1, hop
/// limit 255, flags Override, with the target link-layer address option.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let dst: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0]); // type NA, code 0, checksum placeholder
    icmp.extend_from_slice(&0x2000_0000u32.to_be_bytes()); // O (override); not R, not S
    icmp.extend_from_slice(&ip.octets());
    icmp.extend_from_slice(&[2, 1]); // option: target link-layer address, 8 bytes
    icmp.extend_from_slice(&mac);
    let sum = icmpv6_checksum(ip, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    ethernet(&mut f, ALL_NODES_MAC, mac, ETH_P_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, no class or label
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]); // next header ICMPv6, hop limit 255
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The ICMPv6 checksum over the pseudo-header and the message (checksum field zero).
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x0a, 0, 0, 0x64, 0, 2];

    #[test]
    fn garp_request_and_reply() {
        let ip = Ipv4Addr::new(203, 0, 113, 7);
        let req = gratuitous_arp(MAC, ip, false);
        assert_eq!(req.len(), 60);
        assert_eq!(&req[0..6], &BROADCAST);
        assert_eq!(&req[6..12], &MAC);
        assert_eq!(&req[12..14], &[0x08, 0x06]);
        assert_eq!(&req[20..22], &[0, 1]); // request
        assert_eq!(&req[22..28], &MAC);
        assert_eq!(&req[28..32], &[203, 0, 113, 7]);
        assert_eq!(&req[32..38], &[0; 6]);
        assert_eq!(&req[38..42], &[203, 0, 113, 7]);
        let rep = gratuitous_arp(MAC, ip, true);
        assert_eq!(&rep[20..22], &[0, 2]); // reply
        assert_eq!(&rep[32..38], &MAC);
    }

    #[test]
    fn unsolicited_na_is_well_formed() {
        let ip: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let f = unsolicited_na(MAC, ip);
        assert_eq!(f.len(), 14 + 40 + 32);
        assert_eq!(&f[0..6], &ALL_NODES_MAC);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[14] >> 4, 6);
        assert_eq!(&f[18..20], &[0, 32]);
        assert_eq!((f[20], f[21]), (58, 255));
        assert_eq!(&f[22..38], &ip.octets());
        let icmp = &f[54..];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4], 0x20); // override only
        assert_eq!(&icmp[8..24], &ip.octets());
        assert_eq!(&icmp[24..26], &[2, 1]);
        assert_eq!(&icmp[26..32], &MAC);
        // A correct checksum makes the sum over pseudo-header and message come out as zero.
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(icmpv6_checksum(ip, dst, icmp), 0);
    }
}
