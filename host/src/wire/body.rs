//! The body type of every request and response the gateway handles, and a wrapper that
//! reports how a body ended.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;

use super::grpc_messages::MessageCounter;

/// Errors a body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body: from a peer, or made by the gateway.
pub type Body = BoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// Any body, boxed.
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// How a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// After its last frame.
    Complete,
    /// With an error from the body it wraps.
    Failed,
    /// Dropped before its end: the peer reading it went away.
    Dropped,
}

/// What a body passed on before it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Data bytes.
    pub bytes: u64,
    /// The `grpc-status` of its trailers, if they had one.
    pub grpc_status: Option<u32>,
    /// Its gRPC messages, when they are counted.
    pub messages: u64,
}

/// A body that calls `on_end` once, with how it ended and what it passed on.
pub struct OnEnd<B: http_body::Body + Unpin, F: FnOnce(End, Sent)> {
    inner: B,
    on_end: Option<F>,
    sent: Sent,
    /// Counts gRPC messages, when asked to.
    messages: Option<Box<MessageCounter>>,
}

impl<B: http_body::Body + Unpin, F: FnOnce(End, Sent)> OnEnd<B, F> {
    /// Wraps `inner`, calling `on_end` when it ends.
    pub fn new(inner: B, on_end: F) -> Self {
        Self {
            inner,
            on_end: Some(on_end),
            sent: Sent::default(),
            messages: None,
        }
    }

    /// Counts the body's gRPC messages too.
    pub fn counting_messages(mut self) -> Self {
        self.messages = Some(Box::default());
        self
    }

    fn end(&mut self, end: End) {
        if let Some(on_end) = self.on_end.take() {
            on_end(end, self.sent);
        }
    }
}

impl<B, F> http_body::Body for OnEnd<B, F>
where
    B: http_body::Body + Unpin,
    F: FnOnce(End, Sent) + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        use bytes::Buf as _;
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let this = &mut *self;
                if let Some(counter) = &mut this.messages {
                    counter.feed_frame(frame);
                    this.sent.messages = counter.messages;
                }
                match frame.data_ref() {
                    Some(data) => self.sent.bytes += data.remaining() as u64,
                    None => {
                        let trailers = frame.trailers_ref();
                        let status = trailers.and_then(|t| t.get("grpc-status"));
                        self.sent.grpc_status = status.and_then(|s| s.to_str().ok()?.parse().ok());
                    }
                }
                // Servers stop polling once `is_end_stream` holds, so the end is also
                // recognised right after the last frame.
                if self.inner.is_end_stream() {
                    self.end(End::Complete);
                }
            }
            Poll::Ready(Some(Err(_))) => self.end(End::Failed),
            Poll::Ready(None) => self.end(End::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: http_body::Body + Unpin, F: FnOnce(End, Sent)> Drop for OnEnd<B, F> {
    fn drop(&mut self) {
        let end = match self.inner.is_end_stream() {
            true => End::Complete,
            false => End::Dropped,
        };
        self.end(end);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http_body_util::{BodyExt as _, Full, StreamBody};

    use super::*;

    /// Runs `drive` on a body wrapped in [`OnEnd`] and returns how it ended.
    async fn ended<B>(
        body: B,
        drive: impl AsyncFnOnce(OnEnd<B, Box<dyn FnOnce(End, Sent) + Send + Sync>>),
    ) -> Vec<(End, u64)>
    where
        B: http_body::Body + Unpin,
    {
        let ends = Arc::new(Mutex::new(Vec::new()));
        let record = ends.clone();
        let on_end: Box<dyn FnOnce(End, Sent) + Send + Sync> =
            Box::new(move |end, sent| record.lock().unwrap().push((end, sent.bytes)));
        drive(OnEnd::new(body, on_end)).await;
        Arc::try_unwrap(ends).unwrap().into_inner().unwrap()
    }

    #[tokio::test]
    async fn on_end_tells_complete_failed_and_dropped_bodies_apart() {
        let whole = ended(Full::new(Bytes::from("12345")), async |body| {
            body.collect().await.unwrap();
        });
        assert_eq!(whole.await, [(End::Complete, 5)]);

        let unread = ended(Full::new(Bytes::from("12345")), async |body| drop(body));
        assert_eq!(unread.await, [(End::Dropped, 0)]);

        let empty = ended(Full::new(Bytes::new()), async |body| drop(body));
        assert_eq!(empty.await, [(End::Complete, 0)]);

        let frames: [Result<Frame<Bytes>, BoxError>; 2] =
            [Ok(Frame::data(Bytes::from("12"))), Err("cut off".into())];
        let cut = ended(
            StreamBody::new(futures_util::stream::iter(frames)),
            async |body| {
                assert!(body.collect().await.is_err());
            },
        );
        assert_eq!(cut.await, [(End::Failed, 2)]);
    }
}
