//! Lets every gRPC client speak to Hearth's unix sockets. C-core gRPC (Python, C++, Ruby,
//! PHP) and grpc-java send the socket's path as the HTTP/2 `:authority`; h2, under tonic,
//! refuses such a request with RST_STREAM PROTOCOL_ERROR (hyperium/h2 PR 487 is open), while
//! grpc-go, kubelet's, sends `localhost`. [`FixAuthority`] sits on each accepted connection
//! and hands h2 the client's bytes with every header block rewritten without the dynamic
//! table and an unparsable `:authority` replaced by `localhost`; the server's bytes pass
//! untouched. docs/design/grpc-authority.md says why and what it costs.
//!
//! Owns only the client-to-server byte stream of a connection; it never writes to the client.

pub mod frames;
pub mod hpack;

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use frames::Rewriter;

/// How much is read from the client at a time.
const READ_CHUNK: usize = 16 << 10;

/// A server-side connection whose client-to-server bytes go through a [`Rewriter`].
pub struct FixAuthority<S> {
    inner: S,
    rewriter: Rewriter,
    /// Rewritten bytes h2 has not read yet, from `taken` on.
    ready: Vec<u8>,
    taken: usize,
    scratch: Box<[u8]>,
    eof: bool,
}

impl<S> FixAuthority<S> {
    /// Wraps an accepted connection.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            rewriter: Rewriter::default(),
            ready: Vec::new(),
            taken: 0,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            eof: false,
        }
    }
}

impl<S> Drop for FixAuthority<S> {
    fn drop(&mut self) {
        let n = self.rewriter.replaced();
        if n > 0 {
            tracing::debug!(
                replaced = n,
                "connection closed; its :authority was a socket path, served as localhost"
            );
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FixAuthority<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.taken < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.taken);
                buf.put_slice(&this.ready[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.ready.len() {
                    this.ready.clear();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk))?;
            if chunk.filled().is_empty() {
                this.eof = true;
                this.rewriter.finish(&mut this.ready);
            } else {
                this.rewriter.push(chunk.filled(), &mut this.ready);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FixAuthority<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: Connected> Connected for FixAuthority<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_come_rewritten_and_writes_pass_unchanged() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = FixAuthority::new(server);
        let mut enc = loona_hpack::Encoder::new();
        let block = enc.encode([(&b":authority"[..], &b"/run/csi.sock"[..])]);
        let mut sent = frames::PREFACE.to_vec();
        sent.extend_from_slice(&[0, 0, block.len() as u8, 1, 0x5, 0, 0, 0, 1]);
        sent.extend_from_slice(&block);
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        server.write_all(b"answer").await.unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        assert_eq!(writer.await.unwrap(), b"answer");
        assert_eq!(&got[..24], frames::PREFACE);
        let fields = loona_hpack::Decoder::new().decode(&got[24 + 9..]).unwrap();
        assert_eq!(fields, [(b":authority".to_vec(), b"localhost".to_vec())]);
        assert_eq!(got[24 + 4], 0x5, "END_STREAM and END_HEADERS kept");
    }
}
