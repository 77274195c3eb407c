//! A request's report: what its line needs of the request, captured when it arrives,
//! and what counts it, writes its line and ends its span once its response body ends.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{CONTENT_TYPE, HOST, USER_AGENT};

use super::format::{Line, Written};
use super::{Outcome, Telemetry, clock};
use crate::runtime::Generation;
use crate::telemetry::metrics::Finished;
use crate::tls::session::TlsSession;
use crate::wire::body::{Body, End, OnEnd, Sent};
use crate::wire::names::{X_FORWARDED_FOR, X_REQUEST_ID};

/// What a request's line needs of the request, captured when it arrives.
struct Entry {
    started: clock::Stamp,
    method: http::Method,
    protocol: &'static str,
    bytes_received: Option<u64>,
    grpc: bool,
    texts: Texts,
    #[cfg(feature = "otel")]
    span: Option<crate::telemetry::spans::RequestSpan>,
}

impl Entry {
    /// Captures the request's fields, and starts its span when spans are on (which
    /// points the request's `traceparent` at it).
    fn new<B: http_body::Body>(
        request: &mut http::Request<B>,
        client: IpAddr,
        telemetry: &Telemetry,
    ) -> Self {
        #[cfg(feature = "otel")]
        let span = telemetry.spans.as_ref().map(|spans| {
            let method = request.method().clone();
            spans.start(&method, request.headers_mut())
        });
        #[cfg(not(feature = "otel"))]
        let _ = telemetry;
        // One pass over the headers finds the first value of each field the line shows.
        let mut fields: [Option<Option<&str>>; 5] = [None; 5];
        let mut grpc = None;
        for (name, value) in request.headers() {
            let field = if name == HOST {
                Text::Authority
            } else if name == USER_AGENT {
                Text::UserAgent
            } else if name == X_REQUEST_ID {
                Text::RequestId
            } else if name == X_FORWARDED_FOR {
                Text::XForwardedFor
            } else {
                if name == CONTENT_TYPE {
                    grpc.get_or_insert_with(|| value.as_bytes().starts_with(b"application/grpc"));
                }
                continue;
            };
            fields[field as usize].get_or_insert_with(|| value.to_str().ok());
        }
        let mut fields = fields.map(Option::flatten);
        fields[Text::Path as usize] = request
            .uri()
            .path_and_query()
            .map(http::uri::PathAndQuery::as_str);
        let authority = &mut fields[Text::Authority as usize];
        if authority.is_none() {
            *authority = request.uri().authority().map(http::uri::Authority::as_str);
        }
        Self {
            started: clock::Stamp::now(),
            method: request.method().clone(),
            protocol: match request.version() {
                http::Version::HTTP_2 => "HTTP/2",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            bytes_received: request.body().size_hint().exact(),
            grpc: grpc == Some(true),
            texts: Texts::new(fields, telemetry.log.is_some().then_some(client)),
            #[cfg(feature = "otel")]
            span,
        }
    }
}

/// A request being served, and where it will be reported: when its response body ends,
/// or, when it is dropped before it has a response (the client went away), then, with
/// status 0 and Envoy's `DC`. Boxed once, so that the request's report moves from the
/// data path to the response body and the worker's queue as a pointer.
pub struct Pending(Option<Box<Finishing>>);

impl Pending {
    /// Captures `request`'s fields for `telemetry`, from `client` (over `tls`, if it came
    /// over TLS); `generation` names the routes, clusters and policies the outcome notes
    /// by index.
    pub fn new<B: http_body::Body>(
        request: &mut http::Request<B>,
        client: IpAddr,
        tls: Option<&Arc<TlsSession>>,
        telemetry: &'static Telemetry,
        generation: Arc<Generation>,
    ) -> Self {
        Self(Some(Box::new(Finishing {
            entry: Entry::new(request, client, telemetry),
            status: 0,
            grpc_status: None,
            response_messages: 0,
            client_tls: tls.filter(|tls| tls.peer.is_some()).cloned(),
            outcome: Outcome::new(telemetry.log.is_some()),
            telemetry,
            generation,
        })))
    }

    /// The generation serving the request, and what the data path notes of it.
    pub fn parts(&mut self) -> (&Arc<Generation>, &mut Outcome) {
        let finishing = self.0.as_mut().expect("only `finish` takes the request");
        (&finishing.generation, &mut finishing.outcome)
    }

    /// Wraps the response so that the request is reported when its body ends.
    pub fn finish(mut self, response: http::Response<Body>) -> http::Response<Body> {
        let mut finishing = self.0.take().expect("only `finish` takes the request");
        let (parts, body) = response.into_parts();
        finishing.status = parts.status.as_u16();
        let grpc = finishing.entry.grpc;
        if grpc {
            finishing.grpc_status = grpc_status(parts.headers.get("grpc-status"));
        }
        let body = OnEnd::new(body, move |end, sent| finishing.end(end, sent));
        let body = if grpc { body.counting_messages() } else { body };
        http::Response::from_parts(parts, crate::wire::body::boxed(body))
    }
}

impl Pending {
    /// Passes on the answer to an upgrade; the request is reported when its tunnel
    /// closes, with the bytes it carried each way.
    pub fn finish_tunnel(
        mut self,
        response: http::Response<Body>,
        tunnel: crate::wire::tunnel::TunnelEnd,
    ) -> http::Response<Body> {
        let mut finishing = self.0.take().expect("only `finish` takes the request");
        finishing.status = response.status().as_u16();
        tokio::spawn(async move {
            match tunnel.closed().await {
                Some(carried) => {
                    finishing.entry.bytes_received = Some(carried.received);
                    finishing.report(carried.sent);
                }
                None => {
                    finishing.outcome.flags.push("DC");
                    finishing.report(0);
                }
            }
        });
        response
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut finishing) = self.0.take() {
            finishing.outcome.flags.push("DC");
            finishing.report(0);
        }
    }
}

/// A request whose response is on its way, what happened to it, and where it will be
/// reported.
pub(super) struct Finishing {
    entry: Entry,
    status: u16,
    grpc_status: Option<u32>,
    /// The gRPC messages of the response.
    response_messages: u64,
    /// The client's TLS session, when it presented a certificate.
    client_tls: Option<Arc<TlsSession>>,
    outcome: Outcome,
    telemetry: &'static Telemetry,
    generation: Arc<Generation>,
}

impl Finishing {
    /// The request's line, once its response has ended.
    pub(super) fn line(
        &self,
        bytes_sent: u64,
        duration: u64,
    ) -> Line<'_, impl Iterator<Item = Written<'_>>> {
        let (entry, generation) = (&self.entry, &*self.generation);
        let policies = self.outcome.decisions().iter().map(|decision| {
            let (prefix, said) = decision.decision.parts(generation);
            Written {
                policy: decision.policy.name(generation),
                prefix,
                said,
            }
        });
        let texts = &entry.texts;
        Line {
            start_time: clock::since_epoch(entry.started),
            method: entry.method.as_str(),
            path: texts.get(Text::Path).unwrap_or("/"),
            protocol: entry.protocol,
            response_code: self.status,
            response_flags: &self.outcome.flags,
            response_code_details: self.outcome.details.as_deref(),
            bytes_received: entry.bytes_received,
            bytes_sent,
            duration,
            upstream_service_time: self.outcome.upstream_service_time,
            x_forwarded_for: texts.get(Text::XForwardedFor),
            user_agent: texts.get(Text::UserAgent),
            request_id: texts.get(Text::RequestId),
            authority: texts.get(Text::Authority),
            upstream_host: self.outcome.upstream_host,
            route_name: self
                .outcome
                .route
                .map(|id| generation.matched_route_name(id, self.outcome.match_block)),
            policies,
        }
    }

    /// Reports the request once its response body has ended as `end`, `sent` bytes in:
    /// an upstream body that broke off after its head went on is Envoy's `UC`, a client
    /// that went away before the body ended `DC` (a response to HEAD, a 204 and a 304
    /// have no body to wait for, whatever theirs holds).
    fn end(mut self: Box<Self>, end: End, sent: Sent) {
        if sent.grpc_status.is_some() {
            self.grpc_status = sent.grpc_status;
        }
        self.response_messages = sent.messages;
        match end {
            End::Failed => self.outcome.flags.push("UC"),
            End::Dropped
                if self.entry.method != http::Method::HEAD && !matches!(self.status, 204 | 304) =>
            {
                self.outcome.flags.push("DC");
            }
            End::Complete | End::Dropped => {}
        }
        self.report(sent.bytes);
    }

    /// Ends the request's span and queues it to be counted and logged, `bytes_sent`
    /// after its response ended.
    fn report(mut self: Box<Self>, bytes_sent: u64) {
        super::outcome::envoy_order(&mut self.outcome.flags);
        let elapsed = self.entry.started.elapsed();
        let (duration, duration_us) = (elapsed.as_millis() as u64, elapsed.as_micros() as u64);
        #[cfg(feature = "otel")]
        if let Some(span) = &self.entry.span {
            let path = self.entry.texts.get(Text::Path).unwrap_or("/");
            span.end(crate::telemetry::spans::Finished {
                path: path.split_once('?').map_or(path, |(path, _)| path),
                status: self.status,
                flags: &self.outcome.flags,
                route: self.outcome.route.map(|id| {
                    let block = self.outcome.match_block;
                    self.generation.matched_route_name(id, block)
                }),
                upstream: self.outcome.upstream_host,
            });
        }
        let telemetry = self.telemetry;
        if telemetry.batched() {
            telemetry.queue(Done {
                finishing: self,
                bytes_sent,
                duration,
                duration_us,
            });
        }
    }
}

/// A request whose response has ended, waiting to be counted and logged.
pub(super) struct Done {
    finishing: Box<Finishing>,
    bytes_sent: u64,
    duration: u64,
    duration_us: u64,
}

impl Done {
    /// The request's line.
    pub(super) fn line(&self) -> Line<'_, impl Iterator<Item = Written<'_>>> {
        self.finishing.line(self.bytes_sent, self.duration)
    }

    /// The request, as the metrics count it.
    pub(super) fn finished(&self) -> Finished<'_> {
        let Finishing {
            entry,
            status,
            grpc_status,
            response_messages,
            client_tls,
            outcome,
            generation,
            ..
        } = &*self.finishing;
        let messages = |count: Option<&AtomicU64>| count.map_or(0, |c| c.load(Ordering::Relaxed));
        Finished {
            flags: &outcome.flags,
            route: outcome.route.map(|id| generation.route_keys[id as usize]),
            destination: outcome.destination,
            principal: client_tls
                .as_ref()
                .and_then(|tls| tls.peer.as_ref()?.principal()),
            status: *status,
            grpc: entry.grpc,
            grpc_status: *grpc_status,
            messages: entry.grpc.then(|| {
                let request = messages(outcome.request_messages.as_deref());
                (request, *response_messages)
            }),
            duration_us: self.duration_us,
            request_bytes: entry.bytes_received,
            response_bytes: self.bytes_sent,
        }
    }
}

/// A `grpc-status` header's code.
fn grpc_status(value: Option<&http::HeaderValue>) -> Option<u32> {
    value?.to_str().ok()?.parse().ok()
}

/// The request's text fields that the line shows, in [`Texts`].
#[derive(Clone, Copy)]
enum Text {
    Path,
    XForwardedFor,
    UserAgent,
    RequestId,
    Authority,
}

/// The request's text fields, copied into one string when the request arrives: the
/// entry holds no reference count on the request's buffers, which are freed as soon
/// as the request is forwarded.
struct Texts {
    text: String,
    /// Where each [`Text`] ends in `text`, or `None` when the request had none.
    ends: [Option<u32>; 5],
}

impl Texts {
    /// The fields in the order of [`Text`]. With `client`, the `x-forwarded-for` kept is
    /// the one the upstream gets, `client` appended (Envoy logs the header as it forwards it).
    fn new(mut fields: [Option<&str>; 5], client: Option<IpAddr>) -> Self {
        let extra = if client.is_some() { 48 } else { 0 };
        let mut text =
            String::with_capacity(fields.iter().flatten().map(|f| f.len()).sum::<usize>() + extra);
        let forwarded = &mut fields[Text::XForwardedFor as usize];
        if forwarded.is_some_and(|f| f.trim().is_empty()) {
            *forwarded = None;
        }
        let mut ends = [None; 5];
        for (index, field) in fields.into_iter().enumerate() {
            let appended = client.filter(|_| index == Text::XForwardedFor as usize);
            if field.is_none() && appended.is_none() {
                continue;
            }
            text.push_str(field.unwrap_or_default());
            if let Some(client) = appended {
                let separator = if field.is_some() { ", " } else { "" };
                let _ = write!(text, "{separator}{client}");
            }
            ends[index] = Some(text.len() as u32);
        }
        Self { text, ends }
    }

    fn get(&self, field: Text) -> Option<&str> {
        let index = field as usize;
        let end = self.ends[index]? as usize;
        let start = self.ends[..index].iter().rev().flatten().next().copied();
        Some(&self.text[start.unwrap_or(0) as usize..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_give_back_each_field_or_none() {
        let texts = Texts::new(
            [Some("/a?b"), None, Some(""), Some("id-1"), Some("x.test")],
            None,
        );
        assert_eq!(texts.get(Text::Path), Some("/a?b"));
        assert_eq!(texts.get(Text::XForwardedFor), None);
        assert_eq!(texts.get(Text::UserAgent), Some(""));
        assert_eq!(texts.get(Text::RequestId), Some("id-1"));
        assert_eq!(texts.get(Text::Authority), Some("x.test"));
        let none = Texts::new([None; 5], None);
        assert_eq!(none.get(Text::Path), None);
        assert_eq!(none.get(Text::Authority), None);
    }

    #[test]
    fn the_forwarded_for_kept_is_the_one_sent_upstream() {
        let client = Some(IpAddr::from([192, 0, 2, 7]));
        let appended = Texts::new([Some("/"), Some("203.0.113.5"), None, None, None], client);
        assert_eq!(
            appended.get(Text::XForwardedFor),
            Some("203.0.113.5, 192.0.2.7")
        );
        assert_eq!(appended.get(Text::Path), Some("/"));
        for sent in [None, Some(" ")] {
            let texts = Texts::new([Some("/"), sent, Some("curl"), None, None], client);
            assert_eq!(texts.get(Text::XForwardedFor), Some("192.0.2.7"));
            assert_eq!(texts.get(Text::UserAgent), Some("curl"));
        }
    }

    #[test]
    fn entries_take_each_fields_first_value() {
        let mut request = http::Request::builder()
            .uri("http://from-uri.test/p?q=1")
            .header("user-agent", "first")
            .header("user-agent", "second")
            .header("content-type", "application/grpc+proto")
            .header("content-type", "text/plain")
            .header("x-forwarded-for", "203.0.113.5")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let client = IpAddr::from([127, 0, 0, 1]);
        let entry = Entry::new(&mut request, client, &Telemetry::default());
        let texts = &entry.texts;
        assert_eq!(texts.get(Text::Path), Some("/p?q=1"));
        assert_eq!(texts.get(Text::UserAgent), Some("first"));
        assert_eq!(texts.get(Text::XForwardedFor), Some("203.0.113.5"));
        assert_eq!(texts.get(Text::RequestId), None);
        assert_eq!(texts.get(Text::Authority), Some("from-uri.test"));
        assert!(entry.grpc);
    }
}
