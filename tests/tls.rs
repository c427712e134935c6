//! TLS and mutual TLS on the gRPC port (R-SEC-1), with certificates made by rcgen: a client
//! that trusts the server's CA and presents a certificate from the configured client CA is
//! served; no client certificate, or one from another CA, fails the handshake; a client that
//! does not trust the server's CA fails too.

mod common;

use common::*;
use hearken::proto::v1::listening_service_client::ListeningServiceClient;
use hearken::server::Tls;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate for `name` signed by `ca`: (cert PEM, key PEM).
fn leaf(ca: &Ca, name: &str) -> (String, String) {
    let params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn tls_server(server_ca: &Ca, client_ca: Option<&Ca>) -> Running {
    let (cert, key) = leaf(server_ca, "localhost");
    TestServer::new()
        .config(|c| {
            c.tls = Some(Tls {
                cert_pem: cert.into_bytes(),
                key_pem: key.into_bytes(),
                client_ca_pem: client_ca.map(|c| c.pem.clone().into_bytes()),
            })
        })
        .start()
        .await
}

/// Scores a one-utterance transcript over TLS: Ok(()) or the error's text.
async fn call(
    running: &Running,
    trust: &Ca,
    identity: Option<(String, String)>,
) -> Result<(), String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&trust.pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = Endpoint::from_shared(format!("https://{}", running.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(WAIT);
    let channel = tokio::time::timeout(WAIT, endpoint.connect())
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let mut client = ListeningServiceClient::new(channel);
    tokio::time::timeout(
        WAIT,
        client.score_transcript(one_utterance_transcript("c1", "hello")),
    )
    .await
    .map_err(|_| "call timed out".to_string())?
    .map(|_| ())
    .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn tls_serves_a_client_that_trusts_the_server_and_refuses_one_that_does_not() {
    let server_ca = ca("hearken test server CA");
    let running = tls_server(&server_ca, None).await;
    call(&running, &server_ca, None).await.expect("TLS call");
    let other = ca("someone else");
    assert!(
        call(&running, &other, None).await.is_err(),
        "untrusted server certificate"
    );
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_from_the_configured_ca() {
    let server_ca = ca("hearken test server CA");
    let client_ca = ca("contact centre client CA");
    let running = tls_server(&server_ca, Some(&client_ca)).await;

    let good = leaf(&client_ca, "platform.contact-centre");
    call(&running, &server_ca, Some(good))
        .await
        .expect("a client certificate from the client CA is accepted");

    assert!(
        call(&running, &server_ca, None).await.is_err(),
        "no client certificate"
    );
    let rogue_ca = ca("rogue CA");
    let rogue = leaf(&rogue_ca, "platform.contact-centre");
    assert!(
        call(&running, &server_ca, Some(rogue)).await.is_err(),
        "a client certificate from another CA"
    );
}

/// Under mutual TLS the client certificate names the tenant (its first URI or DNS name): two
/// integrations behind one address each get their own per-tenant cap (before: both were the
/// one peer IP).
#[tokio::test]
async fn the_client_certificate_names_the_tenant_for_its_caps() {
    let server_ca = ca("hearken test server CA");
    let client_ca = ca("contact centre client CA");
    let (cert, key) = leaf(&server_ca, "localhost");
    let running = TestServer::new()
        .config(|c| {
            c.tls = Some(Tls {
                cert_pem: cert.into_bytes(),
                key_pem: key.into_bytes(),
                client_ca_pem: Some(client_ca.pem.clone().into_bytes()),
            });
            c.limits.max_conversations_per_tenant = 1;
        })
        .start()
        .await;
    let client_for = |name: &str| {
        let (cert, key) = leaf(&client_ca, name);
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&server_ca.pem))
            .domain_name("localhost")
            .identity(Identity::from_pem(cert, key));
        let endpoint = Endpoint::from_shared(format!("https://{}", running.addr))
            .unwrap()
            .tls_config(tls)
            .unwrap();
        async move { ListeningServiceClient::new(endpoint.connect().await.unwrap()) }
    };
    let mut first = client_for("platform-a.example").await;
    let mut second = client_for("platform-b.example").await;
    let mut a = Call::open(&mut first).await;
    let mut b = Call::open(&mut second).await;
    use hearken::proto::v1::Role;
    a.send(utterance("a1", "u1", Role::Customer, "hello", 0, 900))
        .await;
    assert_eq!(kind(&a.expect().await), "update");
    b.send(utterance("b1", "u1", Role::Customer, "hello", 0, 900))
        .await;
    assert_eq!(
        kind(&b.expect().await),
        "update",
        "the other tenant has its own cap"
    );
    a.send(utterance("a2", "u1", Role::Customer, "hello", 0, 900))
        .await;
    let r = a.expect().await;
    assert_eq!(kind(&r), "rejection", "{r:?}");
}

/// Certificates from `client_ca` that name no tenant: an empty subject and only an e-mail name,
/// or a URI name too long to be one (321 bytes).
fn nameless(client_ca: &Ca) -> Vec<(&'static str, (String, String))> {
    let signed = |params: CertificateParams| {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &client_ca.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let mut email_only = CertificateParams::new(Vec::<String>::new()).unwrap();
    email_only.distinguished_name = rcgen::DistinguishedName::new();
    email_only.subject_alt_names = vec![rcgen::SanType::Rfc822Name(
        "ops@example.com".try_into().unwrap(),
    )];
    let mut long_uri = CertificateParams::new(Vec::<String>::new()).unwrap();
    long_uri.distinguished_name = rcgen::DistinguishedName::new();
    long_uri.subject_alt_names = vec![rcgen::SanType::URI(
        format!("spiffe://example.org/{}", "a".repeat(300))
            .try_into()
            .unwrap(),
    )];
    vec![
        ("e-mail only", signed(email_only)),
        ("321-byte URI", signed(long_uri)),
    ]
}

/// A certificate from the client CA that names no tenant (an empty subject and only an e-mail
/// name, or a URI name too long to be one) is refused, not served as every tenant.
#[tokio::test]
async fn a_client_certificate_that_names_no_tenant_is_refused() {
    let server_ca = ca("hearken test server CA");
    let client_ca = ca("contact centre client CA");
    let running = tls_server(&server_ca, Some(&client_ca)).await;
    for (what, identity) in nameless(&client_ca) {
        let refused = call(&running, &server_ca, Some(identity))
            .await
            .expect_err(what);
        assert!(
            refused.contains("PermissionDenied") && refused.contains("CERTIFICATE_TENANT_MISSING"),
            "{what}: {refused}"
        );
    }
    call(
        &running,
        &server_ca,
        Some(leaf(&client_ca, "platform-a.example")),
    )
    .await
    .expect("a certificate that names a tenant is served");
}

/// The floor page is served over TLS with the gRPC port's certificate; under mutual TLS a
/// browser needs a client certificate from the same CA, and it names the tenant whose calls
/// the viewer sees.
#[tokio::test]
async fn the_floor_page_uses_the_grpc_ports_tls_and_client_certificates() {
    use std::sync::Arc;
    let server_ca = ca("hearken test server CA");
    let client_ca = ca("contact centre client CA");
    let (cert, key) = leaf(&server_ca, "localhost");
    let running = TestServer::new()
        .config(|c| {
            c.tls = Some(Tls {
                cert_pem: cert.into_bytes(),
                key_pem: key.into_bytes(),
                client_ca_pem: Some(client_ca.pem.clone().into_bytes()),
            })
        })
        .floor(hearken::floor::FloorConfig::default())
        .start()
        .await;
    let ui = running.ui.unwrap();
    let connector = |identity: Option<(String, String)>| {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(server_ca.pem.as_bytes()).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    };
    let get = |identity: Option<(String, String)>| {
        let connector = connector(identity);
        async move {
            let tcp = tokio::net::TcpStream::connect(ui).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = tokio::time::timeout(WAIT, connector.connect(name, tcp))
                .await
                .unwrap()
                .map_err(|e| e.to_string())?;
            common::web::try_get_on(tls, "/api/floor", None)
                .await
                .map_err(|e| e.to_string())
        }
    };
    // A plaintext request to the TLS port gets no page.
    let plain = tokio::time::timeout(WAIT, async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut io = tokio::net::TcpStream::connect(ui).await.unwrap();
        io.write_all(b"GET /api/floor HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = io.read_to_end(&mut raw).await;
        raw
    })
    .await
    .unwrap();
    assert!(!String::from_utf8_lossy(&plain).contains("\"rows\""));

    // A call streamed by the globex platform, over mutual TLS.
    let platform = leaf(&client_ca, "platform.globex");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&server_ca.pem))
        .domain_name("localhost")
        .identity(Identity::from_pem(platform.0.clone(), platform.1.clone()));
    let channel = Endpoint::from_shared(format!("https://{}", running.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ListeningServiceClient::new(channel);
    let mut call = Call::open(&mut client).await;
    call.send(utterance(
        "globex-call",
        "u1",
        hearken::proto::v1::Role::Customer,
        "my bill is wrong",
        0,
        3_000,
    ))
    .await;
    assert_eq!(kind(&call.expect().await), "update");

    // A client certificate from the client CA is needed; with it, the viewer's tenant is the
    // certificate's name: acme's supervisors do not see globex's call, globex's do.
    match get(None).await {
        Err(e) => assert!(e.contains("CertificateRequired"), "{e}"),
        Ok(r) => panic!("served without a client certificate: {}", r.status),
    }
    let acme = get(Some(leaf(&client_ca, "supervisors.acme")))
        .await
        .expect("TLS with a client certificate");
    assert_eq!(acme.status, 200);
    assert_eq!(acme.json()["rows"].as_array().unwrap().len(), 0);
    let globex = get(Some(platform)).await.unwrap().json();
    assert_eq!(globex["rows"].as_array().unwrap().len(), 1, "{globex}");
    assert_eq!(globex["rows"][0]["conversation_id"], "globex-call");
    // A certificate that names no tenant sees no one's calls (before #29 it saw every tenant's).
    for (what, identity) in nameless(&client_ca) {
        if let Ok(r) = get(Some(identity)).await {
            assert_ne!(r.status, 200, "{what}: served");
            assert!(!r.body.contains("globex-call"), "{what}: {}", r.body);
        }
    }
}
