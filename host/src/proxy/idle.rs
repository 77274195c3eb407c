//! Idle connections: an I/O wrapper that counts reads and writes, and a watch that
//! resolves once a connection has moved no bytes for its idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many times per idle timeout the watch looks: a connection is closed between one
/// and 1 + 1/SAMPLES idle timeouts after its last byte.
const SAMPLES: u32 = 4;

/// An I/O stream whose reads and writes that move bytes are counted.
pub struct Active<I> {
    inner: I,
    moved: Arc<AtomicU64>,
}

impl<I> Active<I> {
    /// Wraps `inner`; the counter holds the last activity, in ms since the process started.
    pub fn new(inner: I) -> (Self, Arc<AtomicU64>) {
        let moved = Arc::new(AtomicU64::new(0));
        let active = Self {
            inner,
            moved: moved.clone(),
        };
        (active, moved)
    }

    fn moved(&self) {
        self.moved.fetch_add(1, Ordering::Relaxed);
    }
}

/// Resolves once `moved` has stayed the same for `timeout`.
pub async fn idle(moved: Arc<AtomicU64>, timeout: Duration) {
    let mut tick = tokio::time::interval(timeout / SAMPLES);
    tick.tick().await;
    let (mut last, mut quiet) = (moved.load(Ordering::Relaxed), 0);
    loop {
        tick.tick().await;
        let now = moved.load(Ordering::Relaxed);
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
        if quiet >= SAMPLES {
            return;
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Active<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.moved();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Active<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
