//! TLS settings shared by the gRPC port and the floor page's port (the page is served with the
//! gRPC port's certificate and, under mutual TLS, asks for the same client certificates).

use std::time::Duration;

/// TLS for the gRPC port (R-SEC-1): the server's certificate chain and key, and for mutual
/// TLS the CA that client certificates must chain to.
#[derive(Clone)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert_pem: Vec<u8>,
    /// PEM private key.
    pub key_pem: Vec<u8>,
    /// PEM CA bundle; when set, every client must present a certificate it signed.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Tls")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// A TLS handshake not finished within this is dropped (R-SEC-1).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
