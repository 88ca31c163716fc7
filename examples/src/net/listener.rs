//! Listening sockets and TLS accept: bind with a typed error, the address actually bound (ports
//! chosen at run time), and a TLS handshake with a deadline so a silent client holds no task.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener could not bind.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {error}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub error: std::io::Error,
}

/// Binds a TCP listener on `addr` with room for `backlog` connections waiting for `accept`
/// (the kernel caps it at `net.core.somaxconn`).
pub async fn bind(addr: SocketAddr, backlog: u32) -> Result<TcpListener, BindError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    };
    socket
        .and_then(|socket| {
            // As `TcpListener::bind` does: a restarted program can bind while old connections
            // linger in TIME_WAIT.
            #[cfg(unix)]
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(backlog)
        })
        .map_err(|error| BindError { addr, error })
}

/// The address `listener` is bound to (its real port when it was bound to port 0).
pub fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Runs the TLS handshake on `stream` within [`HANDSHAKE_TIMEOUT`]; `None` (logged) when it
/// fails or times out.
pub async fn accept_tls(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}
