//! The session's TCP connection to the coordinator, made so that this process stops answering
//! for its floating IPs *before* its end of the connection closes.
//!
//! The coordinator moves a node's addresses at once when the node's kernel closes the
//! connection with a FIN (hearth-coordinator's `closes`): that FIN comes either from the process
//! dying (nothing answers any more) or from this process closing the socket, and the latter
//! must never happen while the answer gate is open. So [`Fenced`] shuts the gate before a
//! shutdown, on drop (before the socket's descriptor is closed), and as soon as a read or
//! write on it fails or the coordinator's end closes. Shutting the gate is always safe; the
//! next session's first lease opens it again.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hearth_net::announce::Gate;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection whose closing shuts the answer gate first.
#[derive(Debug)]
pub struct Fenced {
    inner: TcpStream,
    gate: Arc<Gate>,
}

impl Fenced {
    /// Wraps `inner`; `gate` is shut before it closes.
    pub fn new(inner: TcpStream, gate: Arc<Gate>) -> Self {
        Self { inner, gate }
    }
}

impl Drop for Fenced {
    fn drop(&mut self) {
        // Runs before the stream's own drop closes the descriptor (fields drop after this).
        self.gate.shut();
    }
}

impl AsyncRead for Fenced {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let (before, room) = (buf.filled().len(), buf.remaining());
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let eof = matches!(r, Poll::Ready(Ok(()))) && room > 0 && buf.filled().len() == before;
        if eof || matches!(r, Poll::Ready(Err(_))) {
            self.gate.shut();
        }
        r
    }
}

impl AsyncWrite for Fenced {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Err(_))) {
            self.gate.shut();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.gate.shut();
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Err(_))) {
            self.gate.shut();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Connects the session's channel over [`Fenced`] TCP (TLS, when configured, goes on top).
#[derive(Debug, Clone)]
pub struct Connector {
    gate: Arc<Gate>,
}

impl Connector {
    /// Connections that shut `gate` before they close.
    pub fn new(gate: Arc<Gate>) -> Self {
        Self { gate }
    }
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TokioIo<Fenced>>> + Send>>;

impl tower::Service<http::Uri> for Connector {
    type Response = TokioIo<Fenced>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let gate = Arc::clone(&self.gate);
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?
                .trim_matches(['[', ']'])
                .to_owned();
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
            for addr in tokio::net::lookup_host((host.as_str(), port)).await? {
                match TcpStream::connect(addr).await {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        return Ok(TokioIo::new(Fenced::new(s, gate)));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;
    use tokio::time::Instant;
    use tower::Service as _;

    use super::*;

    fn open_gate() -> Arc<Gate> {
        let g = Arc::new(Gate::default());
        g.open_until(Instant::now() + Duration::from_secs(60));
        g
    }

    #[tokio::test]
    async fn the_gate_is_shut_before_this_end_closes_and_when_the_peer_goes() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: http::Uri = format!("http://{}", l.local_addr().unwrap())
            .parse()
            .unwrap();
        let gate = open_gate();
        let mut conn = Connector::new(Arc::clone(&gate))
            .call(uri.clone())
            .await
            .unwrap();
        let (mut server, _) = l.accept().await.unwrap();
        assert!(gate.is_open());
        // Dropping the connection: shut before the FIN leaves.
        let mut io = conn.into_inner();
        io.write_all(b"x").await.unwrap();
        drop(io);
        assert!(!gate.is_open(), "shut on drop");
        let mut buf = Vec::new();
        server.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"x");

        // A shutdown of this end.
        let gate = open_gate();
        conn = Connector::new(Arc::clone(&gate))
            .call(uri.clone())
            .await
            .unwrap();
        let _server = l.accept().await.unwrap();
        let mut io = conn.into_inner();
        io.shutdown().await.unwrap();
        assert!(!gate.is_open(), "shut before the shutdown");

        // The coordinator's end closes: shut at the read that sees it.
        let gate = open_gate();
        conn = Connector::new(Arc::clone(&gate)).call(uri).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        drop(server);
        let mut io = conn.into_inner();
        let mut buf = [0u8; 4];
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        assert!(
            !gate.is_open(),
            "shut when the peer closed, before any drop"
        );
    }
}
