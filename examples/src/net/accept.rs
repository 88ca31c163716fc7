//! Accepting connections on one listener, bounded and without spinning.
//!
//! - A cap: at most `max_connections` connections of a listener are served at once; one over the
//!   cap is closed as soon as it is accepted (the client sees the connection end before CONNACK,
//!   as with Mosquitto's `max_connections`), counted and logged.
//! - Errors: `accept` fails when the process is out of file descriptors (`EMFILE`) or the system
//!   out of memory; the loop then waits (10 ms, doubling to 1 s) instead of retrying at once, which
//!   would spin a core while the error lasts; each burst of errors is logged once and every error
//!   counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// First and longest wait after a failed `accept`.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What one listener refused, for metrics.
#[derive(Debug, Default)]
pub struct AcceptStats {
    over_cap: AtomicU64,
    errors: AtomicU64,
}

impl AcceptStats {
    /// Connections closed at once because the listener had `max_connections` open.
    pub fn over_cap(&self) -> u64 {
        self.over_cap.load(Ordering::Relaxed)
    }

    /// `accept` calls that failed (out of file descriptors, memory).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// One listener's accepted connections, at most `max_connections` at once.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use iot_examples::net::accept::Acceptor;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = listener.local_addr().unwrap();
/// let mut acceptor = Acceptor::new("example", listener, 1);
/// let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
/// let (_stream, _peer, permit) = acceptor.next().await;
/// drop(permit); // the connection is over: room for another
/// assert_eq!(acceptor.stats().over_cap(), 0);
/// # });
/// ```
#[derive(Debug)]
pub struct Acceptor {
    name: &'static str,
    listener: TcpListener,
    permits: Arc<Semaphore>,
    stats: Arc<AcceptStats>,
}

impl Acceptor {
    /// Accepts on `listener` (named `name` in logs and metrics), at most `max_connections` at
    /// once.
    pub fn new(name: &'static str, listener: TcpListener, max_connections: usize) -> Acceptor {
        Acceptor {
            name,
            listener,
            permits: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            stats: Arc::default(),
        }
    }

    /// What this listener refused.
    pub fn stats(&self) -> Arc<AcceptStats> {
        Arc::clone(&self.stats)
    }

    /// The next connection within the cap, with the permit that holds its place (drop it when
    /// the connection ends).
    pub async fn next(&mut self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    backoff = FIRST_BACKOFF;
                    match Arc::clone(&self.permits).try_acquire_owned() {
                        Ok(permit) => return (stream, peer, permit),
                        Err(_) => {
                            let refused = self.stats.over_cap.fetch_add(1, Ordering::Relaxed);
                            if refused.is_power_of_two() || refused == 0 {
                                tracing::warn!(
                                    listener = self.name,
                                    %peer,
                                    refused = refused + 1,
                                    "connection refused: the listener is at max_connections"
                                );
                            }
                            drop(stream);
                        }
                    }
                }
                Err(error) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    if backoff == FIRST_BACKOFF {
                        tracing::warn!(
                            listener = self.name,
                            %error,
                            "accept failed; backing off (out of file descriptors?)"
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_over_the_cap_is_closed_and_counted() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = Acceptor::new("test", listener, 1);
        let _first = TcpStream::connect(addr).await.unwrap();
        let held = acceptor.next().await;
        let stats = acceptor.stats();
        let mut second = TcpStream::connect(addr).await.unwrap();
        let waiting = tokio::spawn(async move { acceptor.next().await.1 });
        // The second is refused: it reads end of stream.
        let mut byte = [0u8; 1];
        assert_eq!(second.read(&mut byte).await.unwrap(), 0);
        assert_eq!(stats.over_cap(), 1);
        drop(held);
        // With room again, the next is served.
        let third = TcpStream::connect(addr).await.unwrap();
        let peer = waiting.await.unwrap();
        assert_eq!(peer, third.local_addr().unwrap());
    }
}
