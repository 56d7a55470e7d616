//! Graceful shutdown as one small type, in two steps.
//!
//! 1. **Drain**: the accept loop has stopped; every connection is asked to finish what it has in
//!    flight and close (HTTP/2 GOAWAY, HTTP/1.1 close after the current response).
//! 2. **Stop**: after every connection has closed, or after `SHUTDOWN_TIMEOUT` (SSE streams never end
//!    on their own), what is left is closed and the background tasks (key refreshers, the TLS
//!    watcher, the metrics listener) end.
//!
//! Each connection holds a [`ConnectionShutdown`], whose `live` sender tells the drain when the last
//! connection is gone: the channel closes when every sender is dropped, so no count is kept.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// The gate's shutdown signals; owned by the accept loop.
pub(crate) struct Shutdown {
    draining: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    live: mpsc::Sender<()>,
    all_closed: mpsc::Receiver<()>,
}

/// One connection's view of the shutdown.
pub(crate) struct ConnectionShutdown {
    /// Becomes `true` when the gate starts draining.
    pub draining: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    /// Dropped with the connection: the drain waits until every one is gone.
    _live: mpsc::Sender<()>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (live, all_closed) = mpsc::channel(1);
        Shutdown {
            draining: watch::channel(false).0,
            stop: watch::channel(false).0,
            live,
            all_closed,
        }
    }

    /// Resolves when the gate stops (for background tasks).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        wait_true(self.stop.subscribe())
    }

    /// The signals for a newly accepted connection.
    pub fn connection(&self) -> ConnectionShutdown {
        ConnectionShutdown {
            draining: self.draining.subscribe(),
            stop: self.stop.subscribe(),
            _live: self.live.clone(),
        }
    }

    /// Drains for at most `timeout`, then stops everything.
    pub async fn drain(self, timeout: Duration) {
        let Shutdown {
            draining,
            stop,
            live,
            mut all_closed,
        } = self;
        drop(live);
        let _ = draining.send(true);
        tracing::info!(
            ?timeout,
            "shutting down: no new connections, draining in-flight requests"
        );
        tokio::select! {
            _ = all_closed.recv() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(timeout) => {
                tracing::warn!("shutdown timeout reached; closing the remaining connections");
            }
        }
        let _ = stop.send(true);
    }
}

impl ConnectionShutdown {
    /// Resolves when the gate stops: the connection is then closed whatever it is doing.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        wait_true(self.stop.clone())
    }
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_ends_when_the_last_connection_closes_and_then_stops_background_tasks() {
        let shutdown = Shutdown::new();
        let background = tokio::spawn(shutdown.stopped());
        let connection = shutdown.connection();
        let mut draining = connection.draining.clone();
        let drain = tokio::spawn(shutdown.drain(Duration::from_secs(30)));
        draining.wait_for(|d| *d).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!drain.is_finished(), "a live connection holds the drain");
        drop(connection);
        let started = tokio::time::Instant::now();
        drain.await.unwrap();
        background.await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_after_the_timeout_and_stops_the_connections_left() {
        let shutdown = Shutdown::new();
        let connection = shutdown.connection();
        let stopped = tokio::spawn(connection.stopped());
        let started = tokio::time::Instant::now();
        shutdown.drain(Duration::from_secs(5)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        stopped.await.unwrap();
        drop(connection);
    }
}
