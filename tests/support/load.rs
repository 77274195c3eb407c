//! Load for tests that change the gateway under it: clients in a loop, counting failures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::client::Client;

/// Clients sending GET / for a host in a loop for at most 60 s, counting requests and
/// failures (anything but a 200, a failed exchange included).
pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients on `addr`, asking for `host`, each on keep-alive
    /// connections.
    pub fn start(addr: SocketAddr, host: &'static str, clients: usize) -> Self {
        Self::run(addr, host, clients, false)
    }

    /// As [`Load::start`], but every other client opens a new connection per request
    /// (`Connection: close`).
    pub fn mixed(addr: SocketAddr, host: &'static str, clients: usize) -> Self {
        Self::run(addr, host, clients, true)
    }

    fn run(addr: SocketAddr, host: &'static str, clients: usize, mixed: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks = (0..clients)
            .map(|i| {
                let fresh = mixed && i % 2 == 0;
                let client = Client::http1(addr);
                let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let served = match fresh {
                            true => fresh_connection(addr, host).await,
                            false => client
                                .try_get(host, "/")
                                .await
                                .is_ok_and(|r| r.status == 200),
                        };
                        if !served {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Self {
            stop,
            sent,
            failed,
            tasks,
        }
    }

    /// Stops the clients; returns `(sent, failed)`.
    pub async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// One GET / for `host` on a connection of its own: whether it got a 200.
async fn fresh_connection(addr: SocketAddr, host: &str) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = format!("GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response));
    matches!(read.await, Ok(Ok(_))) && response.starts_with(b"HTTP/1.1 200")
}
