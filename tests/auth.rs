//! Bearer tokens (R-SEC-4), table-driven: ES256 and RS256-only JWKS from a file, `exp`, `nbf`,
//! `iss` and `aud` checked with 60 s of leeway; UNAUTHENTICATED for bad credentials and
//! PERMISSION_DENIED for a valid token without a tenant; health stays open; the tenant keys
//! the stream-open quota.

mod common;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::*;
use hearken::proto::v1::listening_service_client::ListeningServiceClient;
use hearken::service::auth::JwtVerifier;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rcgen::KeyPair;
use tonic_types::StatusExt as _;

const ISSUER: &str = "https://login.contact-centre.example";
const AUDIENCE: &str = "hearken";

struct Signer {
    kid: String,
    key: EncodingKey,
    jwk: serde_json::Value,
}

fn signer(kid: &str) -> Signer {
    let pair = KeyPair::generate().unwrap(); // ECDSA P-256
    let raw = pair.public_key_raw(); // 0x04 || x || y
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    Signer {
        kid: kid.to_owned(),
        key: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        jwk: serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
        }),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(signer: &Signer, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(signer.kid.clone());
    encode(&header, &claims, &signer.key).unwrap()
}

fn claims() -> serde_json::Value {
    serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "nbf": now() - 10, "tenant": "acme"})
}

fn with(mut base: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    if value.is_null() {
        base.as_object_mut().unwrap().remove(key);
    } else {
        base[key] = value;
    }
    base
}

/// A server that accepts tokens signed by `trusted`, the tenant in the `tenant` claim.
async fn server_trusting(trusted: &Signer) -> Running {
    let jwks = serde_json::json!({"keys": [trusted.jwk.clone()]}).to_string();
    let verifier = JwtVerifier::from_jwks(&jwks, ISSUER, AUDIENCE, "tenant").unwrap();
    TestServer::new()
        .config(|c| c.jwt = Some(Arc::new(verifier)))
        .start()
        .await
}

async fn score(running: &Running, authorization: Option<String>) -> Result<(), tonic::Status> {
    let mut client = ListeningServiceClient::new(running.channel().await);
    let mut request = tonic::Request::new(one_utterance_transcript("c1", "hello"));
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    client.score_transcript(request).await.map(|_| ())
}

#[tokio::test]
async fn tokens_are_checked_and_errors_say_which_check_failed() {
    let trusted = signer("k1");
    let stranger = signer("k1"); // same kid, different key: a forged signature
    let running = server_trusting(&trusted).await;

    let bearer = |t: String| Some(format!("Bearer {t}"));
    let cases: Vec<(&str, Option<String>, tonic::Code, &str)> = vec![
        (
            "valid",
            bearer(token(&trusted, claims())),
            tonic::Code::Ok,
            "",
        ),
        (
            "no token",
            None,
            tonic::Code::Unauthenticated,
            "TOKEN_MISSING",
        ),
        (
            "not a JWT",
            bearer("abc.def".into()),
            tonic::Code::Unauthenticated,
            "TOKEN_MALFORMED",
        ),
        (
            "forged",
            bearer(token(&stranger, claims())),
            tonic::Code::Unauthenticated,
            "TOKEN_SIGNATURE",
        ),
        (
            "expired",
            bearer(token(&trusted, with(claims(), "exp", (now() - 120).into()))),
            tonic::Code::Unauthenticated,
            "TOKEN_EXPIRED",
        ),
        (
            "expired within the leeway",
            bearer(token(&trusted, with(claims(), "exp", (now() - 30).into()))),
            tonic::Code::Ok,
            "",
        ),
        (
            "not yet valid",
            bearer(token(&trusted, with(claims(), "nbf", (now() + 300).into()))),
            tonic::Code::Unauthenticated,
            "TOKEN_NOT_YET_VALID",
        ),
        (
            "wrong audience",
            bearer(token(&trusted, with(claims(), "aud", "billing".into()))),
            tonic::Code::Unauthenticated,
            "TOKEN_AUDIENCE",
        ),
        (
            "wrong issuer",
            bearer(token(
                &trusted,
                with(claims(), "iss", "https://evil.example".into()),
            )),
            tonic::Code::Unauthenticated,
            "TOKEN_ISSUER",
        ),
        (
            "no exp",
            bearer(token(
                &trusted,
                with(claims(), "exp", serde_json::Value::Null),
            )),
            tonic::Code::Unauthenticated,
            "TOKEN_CLAIM_MISSING",
        ),
        (
            "no tenant",
            bearer(token(
                &trusted,
                with(claims(), "tenant", serde_json::Value::Null),
            )),
            tonic::Code::PermissionDenied,
            "TENANT_CLAIM_MISSING",
        ),
        (
            "HS256",
            bearer(
                encode(
                    &Header::new(Algorithm::HS256),
                    &claims(),
                    &EncodingKey::from_secret(b"k"),
                )
                .unwrap(),
            ),
            tonic::Code::Unauthenticated,
            "TOKEN_ALGORITHM",
        ),
    ];
    for (name, authorization, code, reason) in cases {
        let token_text = authorization.clone().unwrap_or_default();
        match score(&running, authorization).await {
            Ok(()) => assert_eq!(code, tonic::Code::Ok, "{name}: accepted"),
            Err(status) => {
                assert_eq!(status.code(), code, "{name}: {status:?}");
                let info = status.get_error_details().error_info().cloned().unwrap();
                assert_eq!(
                    (info.reason.as_str(), info.domain.as_str()),
                    (reason, "hearken"),
                    "{name}"
                );
                if token_text.len() > 20 {
                    assert!(
                        !status.message().contains(&token_text[7..27]),
                        "{name}: token echoed"
                    );
                }
            }
        }
    }

    // Health stays open for probes.
    let mut health = tonic_health::pb::health_client::HealthClient::new(running.channel().await);
    assert!(
        health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new()
            })
            .await
            .is_ok()
    );
}

#[test]
fn a_jwks_with_unsupported_keys_is_refused_at_start() {
    let hmac =
        serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}).to_string();
    assert!(JwtVerifier::from_jwks(&hmac, ISSUER, AUDIENCE, "tenant").is_err());
    assert!(JwtVerifier::from_jwks("{\"keys\": []}", ISSUER, AUDIENCE, "tenant").is_err());
}

/// With authentication on, a supervisor's `WatchAlerts` feed holds only its own tenant's alerts
/// (before: every tenant's alerts and conversation ids).
#[tokio::test]
async fn watchers_see_only_their_own_tenants_alerts() {
    use hearken::proto::v1::*;
    let trusted = signer("k1");
    let running = server_trusting(&trusted).await;
    let bearer = |tenant: &str| -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
        format!(
            "Bearer {}",
            token(
                &trusted,
                with(claims(), "tenant", serde_json::json!(tenant))
            )
        )
        .parse()
        .unwrap()
    };
    let mut client = ListeningServiceClient::new(running.channel().await);
    let watch = |tenant: &str| {
        let mut request = tonic::Request::new(WatchAlertsRequest::default());
        request
            .metadata_mut()
            .insert("authorization", bearer(tenant));
        request
    };
    let mut acme = client
        .watch_alerts(watch("acme"))
        .await
        .unwrap()
        .into_inner();
    let mut globex = client
        .watch_alerts(watch("globex"))
        .await
        .unwrap()
        .into_inner();
    // An acme call that raises alerts (an interruption, then dead air).
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    request
        .metadata_mut()
        .insert("authorization", bearer("acme"));
    let mut responses = client
        .stream_conversations(request)
        .await
        .unwrap()
        .into_inner();
    for r in [
        utterance(
            "acme-1",
            "u1",
            Role::Customer,
            "my router keeps dropping the connection every evening",
            0,
            6_000,
        ),
        utterance(
            "acme-1",
            "u2",
            Role::Agent,
            "have you tried turning it off and on",
            3_000,
            4_500,
        ),
        utterance(
            "acme-1",
            "u3",
            Role::Agent,
            "right I found it",
            20_000,
            21_000,
        ),
        end("acme-1"),
    ] {
        tx.send(r).await.unwrap();
    }
    let mut raised = 0;
    loop {
        let r = responses.message().await.unwrap().expect("a response");
        match r.payload {
            Some(stream_conversations_response::Payload::Alert(_)) => raised += 1,
            Some(stream_conversations_response::Payload::Scorecard(_)) => break,
            _ => {}
        }
    }
    assert!(raised >= 1);
    for _ in 0..raised {
        let seen = tokio::time::timeout(WAIT, acme.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match seen.payload {
            Some(watch_alerts_response::Payload::Alert(a)) => {
                assert_eq!(a.conversation_id, "acme-1")
            }
            other => panic!("{other:?}"),
        }
    }
    // The other tenant's watcher saw nothing.
    let nothing =
        tokio::time::timeout(std::time::Duration::from_millis(300), globex.message()).await;
    assert!(nothing.is_err(), "globex saw {nothing:?}");
}

/// The floor page under bearer tokens: `/api/` needs a token, and a viewer sees only its own
/// tenant's conversations and alerts, as a watcher does.
#[tokio::test]
async fn the_floor_needs_a_token_and_shows_each_tenant_only_its_calls() {
    use common::web;
    use hearken::proto::v1::*;
    let trusted = signer("k1");
    let jwks = serde_json::json!({"keys": [trusted.jwk.clone()]}).to_string();
    let verifier = JwtVerifier::from_jwks(&jwks, ISSUER, AUDIENCE, "tenant").unwrap();
    let running = TestServer::new()
        .config(|c| c.jwt = Some(Arc::new(verifier)))
        .floor(hearken::floor::FloorConfig::default())
        .start()
        .await;
    let ui = running.ui.unwrap();
    let token_of = |tenant: &str| {
        token(
            &trusted,
            with(claims(), "tenant", serde_json::json!(tenant)),
        )
    };
    let mut client = ListeningServiceClient::new(running.channel().await);
    let mut streams = Vec::new();
    for tenant in ["acme", "globex"] {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", token_of(tenant)).parse().unwrap(),
        );
        let mut responses = client
            .stream_conversations(request)
            .await
            .unwrap()
            .into_inner();
        let id = format!("{tenant}-call");
        tx.send(utterance(
            &id,
            "u1",
            Role::Customer,
            "my bill is wrong",
            0,
            3_000,
        ))
        .await
        .unwrap();
        let r = tokio::time::timeout(WAIT, responses.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(kind(&r), "update");
        streams.push((tx, responses));
    }

    let missing = web::get(ui, "/api/floor", None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"], "TOKEN_MISSING");
    let other_signer = signer("k1");
    let forged = token(&other_signer, claims());
    let refused = web::get(ui, "/api/floor", Some(&forged)).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["error"], "TOKEN_SIGNATURE");
    assert!(!refused.body.contains(&forged), "the token is never echoed");
    let no_tenant = token(&trusted, with(claims(), "tenant", serde_json::Value::Null));
    assert_eq!(
        web::get(ui, "/api/floor", Some(&no_tenant)).await.status,
        403
    );
    assert_eq!(web::events(ui, None).await.status, 401);
    // The page itself holds no data and loads without a token (it asks for one).
    assert_eq!(web::get(ui, "/", None).await.status, 200);

    let mut keys = std::collections::HashMap::new();
    for tenant in ["acme", "globex"] {
        let floor = web::get(ui, "/api/floor", Some(&token_of(tenant))).await;
        assert_eq!(floor.status, 200);
        let floor = floor.json();
        let rows = floor["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{tenant}: {floor}");
        assert!(
            floor["live"].is_null(),
            "the process's count is not a tenant's to see"
        );
        assert_eq!(rows[0]["conversation_id"], format!("{tenant}-call"));
        keys.insert(tenant, rows[0]["key"].as_u64().unwrap());
        let mut events = web::events(ui, Some(&token_of(tenant))).await;
        assert_eq!(events.status, 200);
        let first = events.until("floor", WAIT).await.unwrap();
        assert_eq!(first["rows"].as_array().unwrap().len(), 1);
    }
    let acme_key = keys["acme"];
    let acme_view = format!("/api/conversations/{acme_key}");
    assert_eq!(
        web::get(ui, &acme_view, Some(&token_of("acme")))
            .await
            .status,
        200
    );
    assert_eq!(
        web::get(ui, &acme_view, Some(&token_of("globex")))
            .await
            .status,
        404,
        "another tenant's conversation is not there for globex"
    );
}
