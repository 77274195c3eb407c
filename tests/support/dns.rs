//! A DNS server on loopback UDP that answers A queries from a table the test edits:
//! a name maps to addresses with a TTL, and the whole server can be made to fail.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

#[derive(Default)]
struct Zone {
    /// Lowercase FQDN (with the final dot) → addresses and TTL.
    names: HashMap<String, (Vec<Ipv4Addr>, u32)>,
    /// Answer SERVFAIL to everything.
    failing: bool,
    queries: usize,
}

/// A running DNS server.
pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
}

impl DnsServer {
    /// Starts a server on an ephemeral loopback port.
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let table = zone.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buffer).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buffer[..n]) else {
                    continue;
                };
                let reply = answer(&query, &mut table.lock().unwrap());
                let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
            }
        });
        Self { addr, zone }
    }

    /// Makes `name` resolve to `addresses` with `ttl` seconds.
    pub fn set(&self, name: &str, addresses: &[Ipv4Addr], ttl: u32) {
        let key = format!("{}.", name.trim_end_matches('.')).to_ascii_lowercase();
        self.zone
            .lock()
            .unwrap()
            .names
            .insert(key, (addresses.to_vec(), ttl));
    }

    /// Makes every query fail (SERVFAIL) or answer again.
    pub fn set_failing(&self, failing: bool) {
        self.zone.lock().unwrap().failing = failing;
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.zone.lock().unwrap().queries
    }
}

fn answer(query: &Message, zone: &mut Zone) -> Message {
    zone.queries += 1;
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    reply.add_queries(query.queries().to_vec());
    if zone.failing {
        reply.set_response_code(ResponseCode::ServFail);
        return reply;
    }
    for question in query.queries() {
        let name = question.name().to_ascii().to_ascii_lowercase();
        match zone.names.get(&name) {
            None => {
                reply.set_response_code(ResponseCode::NXDomain);
            }
            Some((addresses, ttl)) if question.query_type() == RecordType::A => {
                for address in addresses {
                    reply.add_answer(Record::from_rdata(
                        question.name().clone(),
                        *ttl,
                        RData::A(A(*address)),
                    ));
                }
            }
            // The name exists but has no records of this type (AAAA, say).
            Some(_) => {}
        }
    }
    reply
}
