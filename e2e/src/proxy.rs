//! A loopback TCP proxy in front of the API server whose forwarding a test can freeze: a client
//! behind it (an operator's kubeconfig pointing at [`FreezingProxy::url`]) then sees its
//! connections stall, exactly as on a network partition, while its process runs on. TLS passes
//! through untouched (the serving certificate names 127.0.0.1, whatever the port).
//!
//! Frozen, nothing is forwarded either way and new connections are accepted but not served.
//! Thawing drops every connection that lived through the freeze, bytes held included, and serves
//! new ones: a partition that outlasted the connections. (Delivering held bytes late is the one
//! hazard no lease rules out; client-go has it too. The margin between renew deadline and lease
//! duration covers delivery delays, not partitions.)

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    frozen: bool,
    /// Bumped by every freeze and thaw; a connection born in another epoch is dropped.
    epoch: u64,
}

pub struct FreezingProxy {
    addr: SocketAddr,
    state: watch::Sender<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FreezingProxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, _) = watch::channel(State {
            frozen: false,
            epoch: 0,
        });
        let states = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream, states.subscribe()));
            }
        });
        Ok(Self { addr, state, task })
    }

    /// `https://127.0.0.1:<port>`, for a kubeconfig's `server`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn freeze(&self) {
        self.state.send_modify(|s| {
            s.frozen = true;
            s.epoch += 1;
        });
    }

    pub fn thaw(&self) {
        self.state.send_modify(|s| {
            s.frozen = false;
            s.epoch += 1;
        });
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, state: watch::Receiver<State>) {
    let born = state.borrow().epoch;
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either direction ending (or being dropped) ends the connection: both halves drop here.
    tokio::select! {
        _ = pump(client_read, server_write, state.clone(), born) => {}
        _ = pump(server_read, client_write, state, born) => {}
    }
}

/// Copies `from` to `to` while the proxy is not frozen and the epoch is still `born`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut state: watch::Receiver<State>,
    born: u64,
) -> Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await.context("closing");
        }
        let now = *state.wait_for(|s| !s.frozen).await?;
        if now.epoch != born {
            anyhow::bail!("lived through a freeze");
        }
        to.write_all(&buf[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await?;
        Ok(got)
    }

    #[tokio::test]
    async fn frozen_nothing_passes_and_thawed_only_new_connections_are_served() {
        let proxy = FreezingProxy::start(echo_server().await).await.unwrap();
        let mut before = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(roundtrip(&mut before, b"ping").await.unwrap(), b"ping");

        proxy.freeze();
        before.write_all(b"held").await.unwrap();
        let mut during = TcpStream::connect(proxy.addr).await.unwrap();
        during.write_all(b"held too").await.unwrap();
        let mut one = [0u8; 1];
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(300), before.read(&mut one))
                .await;
        assert!(waited.is_err(), "nothing comes back while frozen");

        proxy.thaw();
        // What was held is never delivered: those connections are closed.
        for mut held in [before, during] {
            let read = held.read(&mut one).await;
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        }
        let mut after = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(roundtrip(&mut after, b"pong").await.unwrap(), b"pong");
    }
}
