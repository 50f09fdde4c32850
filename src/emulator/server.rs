//! The accept loop: hyper's HTTP/1 connection builder (for its header-read timeout, which
//! `axum::serve` does not expose), a cap on concurrent connections, graceful shutdown, and
//! the peer address (`ConnectInfo`) that the admin guard reads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt as _;

/// Connection limits of a served emulator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// From when a connection opens or its previous answer is sent, to a complete request
    /// head; else the connection is closed. Bounds silent, half-open and idle keep-alive
    /// connections alike (hyper starts this timer whenever it waits for a request head).
    pub(crate) header_read_timeout: Duration,
    /// Most connections served at once; further ones wait in the listen backlog.
    pub(crate) max_connections: usize,
    /// How long shutdown waits for requests in flight.
    pub(crate) shutdown_grace: Duration,
}

/// Serve `router` on `listener` until `stop` fires (or its sender is dropped), then let open
/// requests finish for up to `limits.shutdown_grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: oneshot::Receiver<()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let permit = tokio::select! {
            biased;
            _ = &mut stop => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // A connection that failed before it was accepted is that client's
                    // problem; anything else (out of descriptors) gets a short pause.
                    if !matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionRefused
                    ) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service =
            router
                .clone()
                .map_request(move |mut request: axum::extract::Request<Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    request
                });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await;
}
