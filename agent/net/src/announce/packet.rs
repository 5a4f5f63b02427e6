//! The `Frames` trait and its real implementation: one AF_PACKET raw socket, opened in the
//! namespace of the thread that creates it, that only sends (protocol 0: it receives
//! nothing). It sends the complete Ethernet frames built in `frame`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::AnnounceError;

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

impl PacketSocket {
    /// Opens the socket (needs CAP_NET_RAW).
    pub fn open() -> Result<Self, AnnounceError> {
        // SAFETY: socket(2) takes no pointers; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(AnnounceError::Socket(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }
}

impl Frames for PacketSocket {
    fn send(&self, ifindex: u32, frame: &[u8]) -> Result<(), AnnounceError> {
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
