//! A real WebSocket server on loopback (tokio-tungstenite) that echoes every message,
//! answers pings, and echoes the client's close frame (tungstenite does both itself); and a raw upgrade server for any
//! other protocol token.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Starts the echo server; returns its address.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    let echo = match message {
                        Message::Text(_) | Message::Binary(_) => message,
                        // tungstenite echoes a close frame by itself, and flushes it
                        // while the stream is read to its end.
                        _ => continue,
                    };
                    if ws.send(echo).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Starts a server that answers any request with `101 Switching Protocols` to `Upgrade:
/// echo-eof`, then reads the client's bytes until the client half-closes, and answers
/// `got N bytes` before closing its own half.
pub async fn half_close_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let answer = "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo-eof\r\nx-upstream: raw\r\n\r\n";
                stream.write_all(answer.as_bytes()).await.unwrap();
                let mut got = Vec::new();
                let _ = stream.read_to_end(&mut got).await;
                let reply = format!("got {} bytes", got.len());
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}
