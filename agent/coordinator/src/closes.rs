//! How each node's TCP connection to the agent API ended, as seen below TLS and HTTP/2: by the
//! node's FIN, or otherwise (a reset, an error, or this side closing it first).
//!
//! A FIN from the node means its kernel closed the socket because the process closed it or
//! died. The agent shuts its answer gate before it closes or drops its own end (see the node's
//! `fenced` connector), so after a FIN nothing of that node answers any more: its addresses may
//! move at once. A reset proves nothing (a firewall or a conntrack flush on the path can inject
//! one while the node lives and answers), and neither does silence; those keep the answer
//! window or the lease. The FIN must come from the node's own kernel: a TCP-terminating proxy
//! between node and coordinator would break this (an L4 NAT such as a Service does not).
//!
//! The wrapper reports under `TcpConnectInfo` (so peer certificates and addresses keep working)
//! and registers its watch by peer address in a [`Closes`] registry the session handler reads.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How a connection ended, as far as it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Still open.
    Open,
    /// The node's end sent a FIN (a read returned end of file) before anything else went wrong.
    NodeClosed,
    /// A reset or another error, or this side shut it first: nothing is proven.
    Other,
}

/// The first ending of one connection.
#[derive(Debug, Default)]
pub struct Watch(AtomicU8);

const OPEN: u8 = 0;
const NODE_CLOSED: u8 = 1;
const OTHER: u8 = 2;

impl Watch {
    fn set(&self, to: u8) {
        let _ = self
            .0
            .compare_exchange(OPEN, to, Ordering::AcqRel, Ordering::Acquire);
    }

    /// How the connection ended (the first event wins).
    pub fn ending(&self) -> Ending {
        match self.0.load(Ordering::Acquire) {
            OPEN => Ending::Open,
            NODE_CLOSED => Ending::NodeClosed,
            _ => Ending::Other,
        }
    }
}

/// The open connections' watches, by peer address.
#[derive(Debug, Default)]
pub struct Closes(Mutex<HashMap<SocketAddr, Arc<Watch>>>);

impl Closes {
    /// The watch of the connection from `peer`, while it is open.
    pub fn get(&self, peer: SocketAddr) -> Option<Arc<Watch>> {
        self.0.lock().ok()?.get(&peer).cloned()
    }

    fn insert(&self, peer: SocketAddr, watch: Arc<Watch>) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(peer, watch);
        }
    }

    fn remove(&self, peer: SocketAddr, watch: &Arc<Watch>) {
        if let Ok(mut m) = self.0.lock() {
            if m.get(&peer).is_some_and(|w| Arc::ptr_eq(w, watch)) {
                m.remove(&peer);
            }
        }
    }

    /// How many connections are watched.
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An accepted connection whose ending is recorded.
#[derive(Debug)]
pub struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
    peer: Option<SocketAddr>,
    closes: Arc<Closes>,
}

impl Watched {
    /// Watches `inner`, registered in `closes` under its peer address.
    pub fn new(inner: TcpStream, closes: &Arc<Closes>) -> Self {
        let watch = Arc::new(Watch::default());
        let peer = inner.peer_addr().ok();
        let _ = inner.set_nodelay(true);
        if let Some(p) = peer {
            closes.insert(p, Arc::clone(&watch));
        }
        Self {
            inner,
            watch,
            peer,
            closes: Arc::clone(closes),
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.watch.set(OTHER);
        if let Some(p) = self.peer {
            self.closes.remove(p, &self.watch);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let (before, room) = (buf.filled().len(), buf.remaining());
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if room > 0 && buf.filled().len() == before => {
                self.watch.set(NODE_CLOSED);
            }
            Poll::Ready(Err(_)) => self.watch.set(OTHER),
            _ => {}
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Err(_))) {
            self.watch.set(OTHER);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // This side closes first: a FIN that follows is the node answering ours.
        self.watch.set(OTHER);
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Err(_))) {
            self.watch.set(OTHER);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connected for Watched {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    async fn pair(closes: &Arc<Closes>) -> (TcpStream, Watched) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (client, Watched::new(server, closes))
    }

    #[tokio::test]
    async fn a_fin_from_the_node_is_told_apart_from_a_reset() {
        let closes = Arc::new(Closes::default());
        // The node's process closes (or dies): its kernel sends a FIN.
        let (mut client, mut server) = pair(&closes).await;
        let peer = client.local_addr().unwrap();
        assert_eq!(closes.get(peer).unwrap().ending(), Ending::Open);
        client.write_all(b"hi").await.unwrap();
        drop(client);
        let mut buf = Vec::new();
        server.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"hi");
        let watch = closes.get(peer).unwrap();
        assert_eq!(watch.ending(), Ending::NodeClosed);
        drop(server);
        assert!(closes.get(peer).is_none(), "unregistered when dropped");
        assert_eq!(watch.ending(), Ending::NodeClosed, "the first ending stays");

        // A reset (what a firewall injects; here SO_LINGER 0 on the client's close).
        let (client, mut server) = pair(&closes).await;
        let peer = client.local_addr().unwrap();
        client.set_zero_linger().unwrap();
        drop(client);
        let mut buf = [0u8; 16];
        let r = server.read(&mut buf).await;
        assert!(r.is_err(), "a reset reads as an error: {r:?}");
        assert_eq!(closes.get(peer).unwrap().ending(), Ending::Other);

        // This side shuts first: the node's FIN that follows proves nothing.
        let (mut client, mut server) = pair(&closes).await;
        let peer = client.local_addr().unwrap();
        server.shutdown().await.unwrap();
        let mut buf = Vec::new();
        client.read_to_end(&mut buf).await.unwrap();
        drop(client);
        let _ = server.read(&mut [0u8; 4]).await;
        assert_eq!(closes.get(peer).unwrap().ending(), Ending::Other);
    }
}
