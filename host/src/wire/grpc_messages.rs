//! Counting the messages of a gRPC stream, for Istio's `istio_request_messages_total`
//! and `istio_response_messages_total`: a body is a run of length-prefixed messages (a
//! flag byte and a big-endian 4-byte length, then that many bytes), and a message is
//! counted when its prefix has passed, however the bytes are split into frames.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Buf;
use http::HeaderMap;
use http_body::Frame;

/// The bytes of a message's prefix.
const PREFIX: usize = 5;

/// Whether a request or response with `headers` is gRPC (by its content type).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// Where a stream is in its messages.
#[derive(Debug, Default, Clone)]
pub struct MessageCounter {
    prefix: [u8; PREFIX],
    /// Bytes of the current prefix seen so far.
    filled: usize,
    /// Bytes of the current message still to pass.
    rest: u64,
    /// Messages whose prefix has passed.
    pub messages: u64,
}

impl MessageCounter {
    /// Counts the messages whose prefix is in (or completed by) `bytes`.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.rest > 0 {
                let skipped = bytes
                    .len()
                    .min(usize::try_from(self.rest).unwrap_or(usize::MAX));
                self.rest -= skipped as u64;
                bytes = &bytes[skipped..];
                continue;
            }
            let taken = bytes.len().min(PREFIX - self.filled);
            self.prefix[self.filled..self.filled + taken].copy_from_slice(&bytes[..taken]);
            self.filled += taken;
            bytes = &bytes[taken..];
            if self.filled == PREFIX {
                let length = &self.prefix[1..];
                self.rest = u64::from(u32::from_be_bytes([
                    length[0], length[1], length[2], length[3],
                ]));
                self.filled = 0;
                self.messages += 1;
            }
        }
    }

    /// Counts the messages in the data of `frame`.
    pub fn feed_frame<D: Buf>(&mut self, frame: &Frame<D>) {
        let Some(data) = frame.data_ref() else {
            return;
        };
        // Walks the buffer's chunks without consuming it (a `Bytes` is one chunk).
        let mut chunks = [IoSlice::new(&[]); 16];
        let filled = data.chunks_vectored(&mut chunks);
        for chunk in &chunks[..filled] {
            self.feed(chunk);
        }
    }
}

/// A body whose messages are counted into a total shared with whoever reports them.
pub struct Counting<B> {
    inner: B,
    counter: MessageCounter,
    total: Arc<AtomicU64>,
}

impl<B> Counting<B> {
    /// Counts `inner`'s messages into `total`.
    pub fn new(inner: B, total: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            counter: MessageCounter::default(),
            total,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for Counting<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            let this = &mut *self;
            this.counter.feed_frame(frame);
            this.total.store(this.counter.messages, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of `len` bytes with its prefix.
    fn message(len: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.resize(PREFIX + len as usize, 7);
        bytes
    }

    #[test]
    fn messages_are_counted_however_the_bytes_are_split() {
        let stream: Vec<u8> = [message(3), message(0), message(70_000), message(1)].concat();
        for split in [1, 2, 4, 5, 6, 7, 1000, stream.len()] {
            let mut counter = MessageCounter::default();
            for chunk in stream.chunks(split) {
                counter.feed(chunk);
            }
            assert_eq!(counter.messages, 4, "in chunks of {split}");
        }
        let mut counter = MessageCounter::default();
        counter.feed(&message(10)[..3]);
        assert_eq!(
            counter.messages, 0,
            "a prefix not yet whole is not a message"
        );
    }
}
