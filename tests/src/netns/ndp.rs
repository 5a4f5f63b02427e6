//! An NDP prober for a client namespace: sends a neighbour solicitation for one IPv6 address
//! every millisecond from a raw packet socket and records every neighbour advertisement for
//! it, with its sender MAC and time (the IPv6 twin of [`super::arp::ArpProbe`]).

use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hearth_net::announce::answer::solicited_node;
use hearth_net::announce::frame::icmpv6_checksum;

use super::arp::{mac_of, Reply};
use super::NetNs;

const ETH_P_IPV6: u16 = 0x86dd;

fn solicitation(src_mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let dst = solicited_node(target);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&src_mac);
    let sum = icmpv6_checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let d = dst.octets();
    let mut f = vec![0x33, 0x33, d[12], d[13], d[14], d[15]];
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&u16::try_from(icmp.len()).expect("short").to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

fn open(ifindex: i32) -> OwnedFd {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            i32::from(ETH_P_IPV6.to_be()),
        )
    };
    assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = u16::try_from(libc::AF_PACKET).expect("AF_PACKET fits");
    addr.sll_protocol = ETH_P_IPV6.to_be();
    addr.sll_ifindex = ifindex;
    // SAFETY: addr is a valid sockaddr_ll of the size passed.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(addr).cast(),
            u32::try_from(std::mem::size_of::<libc::sockaddr_ll>()).expect("size fits"),
        )
    };
    assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
    fd
}

/// A running prober; [`NdpProbe::stop`] returns what it saw.
#[derive(Debug)]
pub struct NdpProbe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Reply>>>,
}

impl NdpProbe {
    /// Solicits `target` from `dev` (as `src`) in `ns` every millisecond.
    pub fn start(ns: &NetNs, dev: &str, src: Ipv6Addr, target: Ipv6Addr) -> Self {
        let src_mac = mac_of(ns, dev);
        let dev = dev.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = ns.thread(move || {
            let name = std::ffi::CString::new(dev).expect("no NUL");
            // SAFETY: name is a valid NUL-terminated string.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            let fd = open(i32::try_from(ifindex).expect("ifindex fits"));
            let frame = solicitation(src_mac, src, target);
            let (mut seen, mut next, mut buf) = (Vec::new(), Instant::now(), [0u8; 256]);
            while !flag.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    // SAFETY: frame is a valid buffer of the given length; the socket is bound.
                    unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
                    next += Duration::from_millis(1);
                }
                loop {
                    // SAFETY: buf is a valid writable buffer of the given length.
                    let n = unsafe {
                        libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                    };
                    let Ok(n) = usize::try_from(n) else { break };
                    // An NA (ICMPv6 type 136) whose target is ours.
                    if n >= 78 && buf[20] == 58 && buf[54] == 136 && buf[62..78] == target.octets()
                    {
                        let mut mac = [0u8; 6];
                        mac.copy_from_slice(&buf[6..12]);
                        seen.push(Reply {
                            at: Instant::now(),
                            mac,
                        });
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            seen
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops probing and returns the advertisements in arrival order.
    pub fn stop(mut self) -> Vec<Reply> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("prober thread"))
            .unwrap_or_default()
    }
}

impl Drop for NdpProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
