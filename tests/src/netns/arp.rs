//! An ARP prober for a client namespace: sends a who-has for one IPv4 address every
//! millisecond from a raw packet socket and records every reply with its sender MAC and time.
//! Two nodes answering for one address shows up as two sender MACs in overlapping time.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::NetNs;

const ETH_P_ARP: u16 = 0x0806;

/// One ARP reply seen by the prober.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// When it arrived.
    pub at: Instant,
    /// Who sent it.
    pub mac: [u8; 6],
}

/// A running prober; [`ArpProbe::stop`] returns what it saw.
#[derive(Debug)]
pub struct ArpProbe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Reply>>>,
}

/// The MAC address of `dev` in `ns`.
pub fn mac_of(ns: &NetNs, dev: &str) -> [u8; 6] {
    let out = ns.ip(&["-o", "link", "show", dev]);
    let text = out
        .split("link/ether ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("link/ether in ip link output");
    let mut mac = [0u8; 6];
    for (i, part) in text.split(':').enumerate().take(6) {
        mac[i] = u8::from_str_radix(part, 16).expect("hex MAC");
    }
    mac
}

fn request(src_mac: [u8; 6], src_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&src_ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

fn open(ifindex: i32) -> OwnedFd {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            i32::from(ETH_P_ARP.to_be()),
        )
    };
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = u16::try_from(libc::AF_PACKET).expect("AF_PACKET fits");
    addr.sll_protocol = ETH_P_ARP.to_be();
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

impl ArpProbe {
    /// Probes `target` from `dev` (with `src_ip`) in `ns`.
    pub fn start(ns: &NetNs, dev: &str, src_ip: Ipv4Addr, target: Ipv4Addr) -> Self {
        let src_mac = mac_of(ns, dev);
        let dev = dev.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = ns.thread(move || {
            let name = std::ffi::CString::new(dev).expect("no NUL");
            // SAFETY: name is a valid NUL-terminated string.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            let ifindex = i32::try_from(ifindex).expect("ifindex fits");
            let fd = open(ifindex);
            let frame = request(src_mac, src_ip, target);
            let mut seen = Vec::new();
            let mut next = Instant::now();
            let mut buf = [0u8; 128];
            while !flag.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    // SAFETY: frame is a valid buffer of the given length; the socket is bound.
                    unsafe {
                        libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0);
                    }
                    next += Duration::from_millis(1);
                }
                loop {
                    // SAFETY: buf is a valid writable buffer of the given length.
                    let n = unsafe {
                        libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                    };
                    let Ok(n) = usize::try_from(n) else { break };
                    // An ARP reply (op 2) whose sender protocol address is the target.
                    if n >= 42 && buf[20..22] == [0, 2] && buf[28..32] == target.octets() {
                        let mut mac = [0u8; 6];
                        mac.copy_from_slice(&buf[22..28]);
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

    /// Stops probing and returns the replies in arrival order.
    pub fn stop(mut self) -> Vec<Reply> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("prober thread"))
            .unwrap_or_default()
    }
}

impl Drop for ArpProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Moments where a MAC other than the latest owner answered after the new owner had already
/// answered: `(old, new, at)` for each reply from `old` that came after `new`'s first reply
/// although `new` had taken over. The ownership sequence must be monotonic: once a MAC has
/// been succeeded, it never answers again.
pub fn dual_answers(replies: &[Reply]) -> Vec<([u8; 6], [u8; 6], Instant)> {
    let mut order: Vec<[u8; 6]> = Vec::new();
    let mut bad = Vec::new();
    for r in replies {
        match order.iter().position(|m| *m == r.mac) {
            None => order.push(r.mac),
            Some(p) if p + 1 < order.len() => {
                bad.push((r.mac, *order.last().expect("non-empty"), r.at));
            }
            Some(_) => {}
        }
    }
    bad
}
