//! The floor's listener: plain TCP or TLS (the gRPC port's certificate, key and client CA),
//! with handshakes off the accept loop and bounded in time, and every connection's writes
//! bounded in time too: a browser that stops reading is disconnected instead of holding a
//! connection and its buffers for ever. Connections are capped in number, a connection must
//! have a response written within the header timeout of being accepted (half-sent or slow
//! headers are let go), and one with nothing written for the idle timeout is closed: an idle
//! or stalled client holds no descriptor for ever.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Sleep;

use crate::tls::{TLS_HANDSHAKE_TIMEOUT, Tls};

/// A write that makes no progress for this long fails, closing the connection.
const WRITE_STALL: Duration = Duration::from_secs(30);

/// Who connected: the tenant a client certificate names (mutual TLS), if any.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) tenant: Option<Arc<str>>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, UiListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, UiListener>) -> Self {
        stream.remote_addr().clone()
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// What a connection to the page's port may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// No response written within this long of accepting: closed.
    pub(crate) header: Duration,
    /// Nothing written for this long: closed.
    pub(crate) idle: Duration,
    /// Connections at once.
    pub(crate) connections: usize,
}

/// An accepted connection, plain or TLS, whose writes may not stall for ever and which is
/// closed when nothing has been written to it for too long.
pub(crate) struct Connection {
    inner: Box<dyn Io>,
    stalled: Option<Pin<Box<Sleep>>>,
    /// Fires when the connection has been quiet too long: `header` after it was accepted
    /// until the first write, then `idle` after each write. Reads do not reset it, so
    /// headers trickled a byte at a time do not keep a connection.
    quiet: Pin<Box<Sleep>>,
    idle: Duration,
    /// Its place under the connection cap, given back when it is dropped.
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl Connection {
    fn new(inner: Box<dyn Io>, limits: Limits, place: tokio::sync::OwnedSemaphorePermit) -> Self {
        Connection {
            inner,
            stalled: None,
            quiet: Box::pin(tokio::time::sleep(limits.header)),
            idle: limits.idle,
            _place: place,
        }
    }

    /// `Pending` from a write: starts (or checks) the stall timer.
    fn stall<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => {
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the browser stopped reading",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => match self.quiet.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nothing to answer for too long (headers not sent whole, or an idle connection)",
                ))),
                Poll::Pending => Poll::Pending,
            },
            ready => ready,
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll
            && n > 0
        {
            let idle = self.idle;
            self.quiet
                .as_mut()
                .reset(tokio::time::Instant::now() + idle);
        }
        self.stall(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.stall(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

use std::future::Future as _;

/// Accepts connections in a task of its own (TLS handshakes each in their own, within
/// [`TLS_HANDSHAKE_TIMEOUT`]) and hands the finished ones to axum.
pub(crate) struct UiListener {
    ready: mpsc::Receiver<(Connection, Peer)>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for UiListener {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl UiListener {
    pub(crate) fn new(
        listener: TcpListener,
        tls: Option<&Tls>,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let acceptor = tls.map(acceptor).transpose()?;
        let (tx, ready) = mpsc::channel(64);
        let places = Arc::new(tokio::sync::Semaphore::new(
            limits
                .connections
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        let accept = tokio::spawn(async move {
            let mut refused = 0u64;
            loop {
                let (tcp, _) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait, then go on.
                        tracing::warn!(%error, "floor: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Over the cap: closed at once (the gRPC port and /metrics keep their
                // descriptors). Said in the log on the first and every 1 000th.
                let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
                    if refused.is_multiple_of(1000) {
                        tracing::warn!(
                            cap = limits.connections,
                            refused = refused + 1,
                            "floor: connection cap reached; new connections are closed"
                        );
                    }
                    refused += 1;
                    drop(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                match &acceptor {
                    None => {
                        let peer = Peer { tenant: None };
                        if tx
                            .send((Connection::new(Box::new(tcp), limits, place), peer))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Some(acceptor) => {
                        tokio::spawn(handshake(acceptor.clone(), tcp, tx.clone(), limits, place));
                    }
                }
            }
        });
        Ok(UiListener { ready, accept })
    }
}

/// A TLS handshake (within [`TLS_HANDSHAKE_TIMEOUT`]), then the connection to axum with the
/// tenant its client certificate names. A verified client certificate that names no tenant is
/// refused (fail closed), as on the gRPC port.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    tx: mpsc::Sender<(Connection, Peer)>,
    limits: Limits,
    place: tokio::sync::OwnedSemaphorePermit,
) {
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let Ok(Ok(tls)) = handshake.await else {
        return;
    };
    let tenant = match tls.get_ref().1.peer_certificates() {
        Some(certs) => match certs
            .first()
            .and_then(|c| crate::service::tenant::certificate_tenant(c))
        {
            Some(t) => Some(Arc::from(t)),
            None => return,
        },
        None => None,
    };
    let peer = Peer { tenant };
    let _ = tx
        .send((Connection::new(Box::new(tls), limits, place), peer))
        .await;
}

impl axum::serve::Listener for UiListener {
    type Io = Connection;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task ended (it does not, short of a panic): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Peer { tenant: None })
    }
}

/// The TLS acceptor for the floor: the gRPC port's certificate and key, HTTP/1.1, and with a
/// client CA, mutual TLS.
fn acceptor(tls: &Tls) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<_, _>>()
        .context("the TLS certificate is not valid PEM")?;
    let key =
        PrivateKeyDer::from_pem_slice(&tls.key_pem).context("the TLS key is not valid PEM")?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &tls.client_ca_pem {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                roots
                    .add(cert.context("the client CA is not valid PEM")?)
                    .context("the client CA is not a usable certificate")?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .context("the client CA cannot verify certificates")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
