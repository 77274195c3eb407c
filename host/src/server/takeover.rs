//! Seamless binary upgrades (`--upgrade-socket PATH`): a serving gateway hands copies of
//! its listening sockets to a successor that asks over a Unix socket, so the successor
//! accepts on the very sockets the old one did. No connection waiting in their queues is
//! lost: once the successor is ready, the old gateway is sent SIGTERM, stops accepting and
//! drains its own connections, while the sockets stay open in the successor.
//!
//! The exchange: the successor connects; the serving gateway sends one record per socket
//! (its address, padded to [`RECORD`] bytes, with the descriptor attached) and closes.

use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The size of one record: an address, space-padded.
const RECORD: usize = 64;

/// How long the serving gateway may take to hand its sockets over.
const TAKE_OVER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Listening sockets taken over from the gateway serving before this one, by address.
#[derive(Default)]
pub struct Inherited(Mutex<HashMap<SocketAddr, Vec<OwnedFd>>>);

impl Inherited {
    /// The sockets of the gateway serving at `path`, if one does (none answering: none).
    pub fn take_over(path: &Path) -> anyhow::Result<Self> {
        let stream = match UnixStream::connect(path) {
            Ok(stream) => stream,
            // No gateway serves there (yet): bind afresh.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return Ok(Self::default());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("connecting to {}", path.display()));
            }
        };
        stream.set_read_timeout(Some(TAKE_OVER_TIMEOUT))?;
        let mut sockets: HashMap<SocketAddr, Vec<OwnedFd>> = HashMap::new();
        while let Some((address, socket)) = receive(&stream)? {
            sockets.entry(address).or_default().push(socket);
        }
        let count: usize = sockets.values().map(Vec::len).sum();
        tracing::info!(sockets = count, from = %path.display(), "took over listening sockets");
        Ok(Self(Mutex::new(sockets)))
    }

    /// The sockets inherited for `address` (a port 0 address has none), taken once.
    pub fn take(&self, address: SocketAddr) -> Vec<std::net::TcpListener> {
        if address.port() == 0 {
            return Vec::new();
        }
        let mut sockets = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let taken = sockets.remove(&address).unwrap_or_default();
        taken.into_iter().map(std::net::TcpListener::from).collect()
    }

    /// Closes the sockets not taken.
    pub fn release(&self) {
        let mut sockets = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for address in sockets.keys() {
            tracing::info!(%address, "closing a taken-over socket the config no longer listens on");
        }
        sockets.clear();
    }
}

/// One record and its socket; `None` at the end.
fn receive(stream: &UnixStream) -> anyhow::Result<Option<(SocketAddr, OwnedFd)>> {
    let mut record = [0u8; RECORD];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut record)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .context("receiving a listening socket")?;
    if received.bytes == 0 {
        return Ok(None);
    }
    let socket = control.drain().find_map(|message| match message {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    let text = std::str::from_utf8(&record[..received.bytes]).unwrap_or_default();
    let address = text
        .trim()
        .parse()
        .context("a handed-over socket's address")?;
    let socket = socket.context("a record without its socket")?;
    Ok(Some((address, socket)))
}

/// Offers the sockets `sockets` returns, at the time of asking, to each gateway that
/// connects to `path` (replacing what was there), until the process ends; `handed` turns
/// true once one took them.
pub fn offer(
    path: &Path,
    handed: Arc<AtomicBool>,
    sockets: impl Fn() -> Vec<(SocketAddr, OwnedFd)> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding the upgrade socket {}", path.display()))?;
    // Whoever connects gets sockets to accept this gateway's traffic on.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("upgrade-socket".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let stream = match stream {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!("the upgrade socket failed to accept: {e}");
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        continue;
                    }
                };
                let offered = sockets();
                if let Err(e) = hand_over(&stream, &offered) {
                    tracing::warn!("handing over listening sockets failed: {e:#}");
                    continue;
                }
                handed.store(true, Ordering::Relaxed);
                tracing::info!(sockets = offered.len(), "handed over listening sockets");
            }
        })
        .context("starting the upgrade socket's thread")?;
    Ok(())
}

/// Sends each socket of `sockets` as one record.
fn hand_over(stream: &UnixStream, sockets: &[(SocketAddr, OwnedFd)]) -> anyhow::Result<()> {
    for (address, socket) in sockets {
        let mut record = [b' '; RECORD];
        let text = address.to_string();
        record[..text.len()].copy_from_slice(text.as_bytes());
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [socket.as_fd()];
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            stream,
            &[IoSlice::new(&record)],
            &mut control,
            SendFlags::empty(),
        )
        .context("sending a listening socket")?;
    }
    Ok(())
}
