//! The server's listener: plain TCP, or TLS (rustls) with the operator's certificate and key. TLS handshakes run
//! in their own tasks, each with a deadline, so a client that stalls its handshake holds up no one else.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes waiting to be served at once; more connections wait in the kernel's backlog.
const HANDSHAKES_QUEUED: usize = 64;

/// A listener the API is served on.
pub enum ServerListener {
    Plain(TcpListener),
    Tls {
        local: SocketAddr,
        accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    },
}

/// The peer of a connection, for handlers that check where a call came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, ServerListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ServerListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Reads a TLS server configuration from PEM files.
pub fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the TLS certificate \"{}\"", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading the TLS certificate \"{}\"", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("\"{}\" holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS key \"{}\"", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl ServerListener {
    /// Serves TLS on `listener`: accepted connections are handshaken in the background.
    pub fn tls(
        listener: TcpListener,
        config: tokio_rustls::rustls::ServerConfig,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, accepted) = tokio::sync::mpsc::channel(HANDSHAKES_QUEUED);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, handed) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = handed.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(Self::Tls { local, accepted })
    }
}

impl axum::serve::Listener for ServerListener {
    type Io = Either<TcpStream, TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            Self::Plain(l) => {
                let (io, addr) = axum::serve::Listener::accept(l).await;
                (Either::Left(io), addr)
            }
            Self::Tls { accepted, .. } => match accepted.recv().await {
                Some((io, addr)) => (Either::Right(io), addr),
                // The accept task ended: nothing more will come.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match self {
            Self::Plain(l) => l.local_addr(),
            Self::Tls { local, .. } => Ok(*local),
        }
    }
}
