//! The `Frames` trait and its real implementation: AF_PACKET raw sockets, opened in the
//! namespace of the thread that creates them. [`PacketSocket::open`] only sends (protocol 0:
//! it receives nothing); [`PacketSocket::listen`] also receives one ethertype from every
//! interface, behind a classic BPF filter that keeps only ARP requests or ICMPv6 neighbour
//! solicitations. Frames are complete Ethernet frames.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::AnnounceError;

/// The ARP ethertype.
pub const ETH_P_ARP: u16 = 0x0806;
/// The IPv6 ethertype.
pub const ETH_P_IPV6: u16 = 0x86dd;

/// Sends a complete Ethernet frame out of an interface.
pub trait Frames: Send + Sync {
    /// Sends `frame` (Ethernet header included) on the interface with index `ifindex`.
    fn send(&self, ifindex: u32, frame: &[u8]) -> Result<(), AnnounceError>;
}

/// An AF_PACKET/SOCK_RAW socket.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

/// Classic BPF: keep ARP requests (opcode 1 at offset 20).
const ARP_REQUESTS: [libc::sock_filter; 4] = [
    bpf(0x28, 0, 0, 20),   // ldh [20]
    bpf(0x15, 0, 1, 1),    // jeq #1, keep, drop
    bpf(0x06, 0, 0, 1600), // ret #1600
    bpf(0x06, 0, 0, 0),    // ret #0
];

/// Classic BPF: keep ICMPv6 (next header 58 at offset 20) neighbour solicitations (type 135 at
/// offset 54).
const SOLICITATIONS: [libc::sock_filter; 6] = [
    bpf(0x30, 0, 0, 20),   // ldb [20]
    bpf(0x15, 0, 3, 58),   // jeq #58, next, drop
    bpf(0x30, 0, 0, 54),   // ldb [54]
    bpf(0x15, 0, 1, 135),  // jeq #135, keep, drop
    bpf(0x06, 0, 0, 1600), // ret #1600
    bpf(0x06, 0, 0, 0),    // ret #0
];

const fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn socket(protocol: u16) -> Result<OwnedFd, AnnounceError> {
    // SAFETY: socket(2) takes no pointers; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(protocol.to_be()),
        )
    };
    if fd < 0 {
        return Err(AnnounceError::Socket(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl PacketSocket {
    /// Opens a socket that only sends (needs CAP_NET_RAW).
    pub fn open() -> Result<Self, AnnounceError> {
        Ok(Self { fd: socket(0)? })
    }

    /// Opens a socket that receives `ethertype` ([`ETH_P_ARP`]: requests only; [`ETH_P_IPV6`]:
    /// neighbour solicitations only) on every interface, and can send.
    pub fn listen(ethertype: u16) -> Result<Self, AnnounceError> {
        let fd = socket(ethertype)?;
        let filter: &[libc::sock_filter] = if ethertype == ETH_P_ARP {
            &ARP_REQUESTS
        } else {
            &SOLICITATIONS
        };
        let prog = libc::sock_fprog {
            len: u16::try_from(filter.len()).unwrap_or(0),
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points to a live filter array of `len` instructions; the kernel copies
        // it during the call.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                std::ptr::from_ref(&prog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(AnnounceError::Socket(std::io::Error::last_os_error()));
        }
        Ok(Self { fd })
    }

    /// Waits up to `timeout` for one frame that arrived (not one this host sent); returns its
    /// length and interface index, `None` on timeout.
    pub fn recv_frame(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<Option<(usize, u32)>, AnnounceError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(AnnounceError::Socket(e));
        }
        if r == 0 {
            return Ok(None);
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` and `addr` are live, writable and of the lengths passed.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                std::ptr::from_mut(&mut addr).cast(),
                &mut len,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(AnnounceError::Socket(e));
        };
        if addr.sll_pkttype == libc::PACKET_OUTGOING {
            return Ok(None);
        }
        Ok(u32::try_from(addr.sll_ifindex).ok().map(|i| (n, i)))
    }

    /// Sends one frame out of `ifindex`.
    pub fn send_frame(&self, ifindex: u32, frame: &[u8]) -> Result<(), AnnounceError> {
        let bad = |source| AnnounceError::Send { ifindex, source };
        if frame.len() < 14 {
            return Err(bad(std::io::Error::from_raw_os_error(libc::EINVAL)));
        }
        let ifindex_c = libc::c_int::try_from(ifindex)
            .map_err(|_| bad(std::io::Error::from_raw_os_error(libc::ENODEV)))?;
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = u16::from_ne_bytes([frame[12], frame[13]]);
        addr.sll_ifindex = ifindex_c;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: the buffer and the address point to live memory of the lengths passed, and
        // the descriptor is owned by `self`.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                std::ptr::from_ref(&addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(bad(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Frames for PacketSocket {
    fn send(&self, ifindex: u32, frame: &[u8]) -> Result<(), AnnounceError> {
        self.send_frame(ifindex, frame)
    }
}
