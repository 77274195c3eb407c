//! The PROXY protocol (v1 text and v2 binary) that load balancers put in front of a
//! connection to say who the client is.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use ppp::{HeaderResult, PartialResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The longest header accepted (a v2 header with TLVs stays well below).
const MAX_HEADER: usize = 4096;

/// Reads the PROXY header at the start of `stream`. Returns the client address it names
/// (`None` for `UNKNOWN` / `LOCAL`) and the stream with any bytes read past the header
/// put back in front.
pub async fn accept<S: AsyncRead + Unpin>(
    mut stream: S,
) -> io::Result<(Option<SocketAddr>, Prefixed<S>)> {
    let mut buffer = BytesMut::with_capacity(256);
    loop {
        if stream.read_buf(&mut buffer).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside the PROXY header",
            ));
        }
        let parsed = HeaderResult::parse(&buffer);
        if parsed.is_incomplete() {
            if buffer.len() > MAX_HEADER {
                return Err(invalid("PROXY header too long"));
            }
            continue;
        }
        let (length, client) = match parsed {
            HeaderResult::V1(Ok(header)) => (header.header.len(), v1_source(&header.addresses)),
            HeaderResult::V2(Ok(header)) => (header.len(), v2_source(&header.addresses)),
            HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => {
                return Err(invalid("not a PROXY protocol header"));
            }
        };
        buffer.advance(length);
        return Ok((
            client,
            Prefixed {
                prefix: buffer.freeze(),
                inner: stream,
            },
        ));
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

fn v1_source(addresses: &v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        v1::Addresses::Tcp4(a) => Some(SocketAddr::new(a.source_address.into(), a.source_port)),
        v1::Addresses::Tcp6(a) => Some(SocketAddr::new(a.source_address.into(), a.source_port)),
        v1::Addresses::Unknown => None,
    }
}

fn v2_source(addresses: &v2::Addresses) -> Option<SocketAddr> {
    match addresses {
        v2::Addresses::IPv4(a) => Some(SocketAddr::new(a.source_address.into(), a.source_port)),
        v2::Addresses::IPv6(a) => Some(SocketAddr::new(a.source_address.into(), a.source_port)),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

/// A stream with bytes already read put back in front of it.
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner` with nothing put back.
    pub fn new(inner: S) -> Self {
        Self {
            prefix: Bytes::new(),
            inner,
        }
    }

    /// Puts `read` back in front of what is left to read.
    pub fn put_back(&mut self, read: Bytes) {
        self.prefix = if self.prefix.is_empty() {
            read
        } else {
            [read, std::mem::take(&mut self.prefix)].concat().into()
        };
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_v1_and_keeps_what_follows() {
        let input: &[u8] = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\nGET / HTTP/1.1\r\n";
        let (client, mut rest) = accept(input).await.unwrap();
        assert_eq!(client, Some("203.0.113.7:5555".parse().unwrap()));
        let mut after = String::new();
        rest.read_to_string(&mut after).await.unwrap();
        assert_eq!(after, "GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn refuses_a_connection_without_a_header() {
        let input: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(accept(input).await.is_err());
    }
}
