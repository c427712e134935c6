//! Bearer-token authentication (R-SEC-4): a JWT in the `authorization` metadata, signed RS256
//! or ES256 by a key of a JWKS file, with `exp`, `nbf`, `iss` and `aud` checked (60 s leeway).
//! The tenant comes from a claim and keys the per-tenant limits. Health and reflection stay
//! open (probes); the listening service needs a token when a JWKS is configured.
//!
//! No token, a malformed or badly signed one, an expired one or one for another issuer or
//! audience → UNAUTHENTICATED; a valid token without the tenant claim → PERMISSION_DENIED.
//! Errors name the problem, never the token or its claims.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, errors::ErrorKind};
use tonic::{Request, Status};

use super::error::ServiceError;
use super::tenant::Tenant;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;

/// Verifies tokens against the keys of a JWKS.
pub struct JwtVerifier {
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    tenant_claim: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("tenant_claim", &self.tenant_claim)
            .finish()
    }
}

impl JwtVerifier {
    /// Keys from a JWKS document (RSA keys verify RS256, P-256 keys ES256; others are refused).
    pub fn from_jwks(
        jwks_json: &str,
        issuer: &str,
        audience: &str,
        tenant_claim: &str,
    ) -> anyhow::Result<Self> {
        let set: JwkSet = serde_json::from_str(jwks_json)
            .map_err(|e| anyhow::anyhow!("the JWKS is not valid JSON Web Key Set JSON: {e}"))?;
        let mut keys = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => anyhow::bail!(
                    "JWKS key {i}: only RSA (RS256) and P-256 (ES256) keys are accepted"
                ),
            };
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| anyhow::anyhow!("JWKS key {i} is not usable: {e}"))?;
            keys.push((jwk.common.key_id.clone(), algorithm, key));
        }
        anyhow::ensure!(!keys.is_empty(), "the JWKS holds no keys");
        anyhow::ensure!(
            !issuer.is_empty() && !audience.is_empty(),
            "an issuer and an audience are required"
        );
        Ok(JwtVerifier {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            tenant_claim: tenant_claim.to_owned(),
        })
    }

    /// The tenant a token was issued for.
    pub fn verify(&self, token: &str) -> Result<Tenant, ServiceError> {
        let unauthenticated = |reason: &'static str| ServiceError::Unauthenticated(reason);
        let header = decode_header(token).map_err(|_| unauthenticated("TOKEN_MALFORMED"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(unauthenticated("TOKEN_ALGORITHM"));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let candidates = self.keys.iter().filter(|(kid, alg, _)| {
            *alg == header.alg && (header.kid.is_none() || kid.as_deref() == header.kid.as_deref())
        });
        let mut last = unauthenticated("TOKEN_UNKNOWN_KEY");
        for (_, _, key) in candidates {
            match decode::<serde_json::Map<String, serde_json::Value>>(token, key, &validation) {
                Ok(data) => {
                    return match data.claims.get(&self.tenant_claim) {
                        Some(serde_json::Value::String(t)) if !t.is_empty() && t.len() <= 256 => {
                            Ok(Tenant(t.clone()))
                        }
                        _ => Err(ServiceError::PermissionDenied("TENANT_CLAIM_MISSING")),
                    };
                }
                Err(e) => {
                    last = unauthenticated(match e.kind() {
                        ErrorKind::ExpiredSignature => "TOKEN_EXPIRED",
                        ErrorKind::ImmatureSignature => "TOKEN_NOT_YET_VALID",
                        ErrorKind::InvalidIssuer => "TOKEN_ISSUER",
                        ErrorKind::InvalidAudience => "TOKEN_AUDIENCE",
                        ErrorKind::InvalidSignature => "TOKEN_SIGNATURE",
                        ErrorKind::MissingRequiredClaim(_) => "TOKEN_CLAIM_MISSING",
                        _ => "TOKEN_INVALID",
                    });
                    if !matches!(e.kind(), ErrorKind::InvalidSignature) {
                        break; // the signature held: the claims are what is wrong
                    }
                }
            }
        }
        Err(last)
    }
}

/// The interceptor in front of the listening service: checks the bearer token when a
/// verifier is configured, and records the tenant for the per-tenant limits.
#[derive(Debug, Clone, Default)]
pub struct Authenticate(pub Option<Arc<JwtVerifier>>);

impl tonic::service::Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(verifier) = &self.0 else {
            // Without bearer tokens, a client certificate (mutual TLS) names the tenant. A
            // verified certificate that names nothing usable is refused: without a tenant the
            // caller would see every tenant's calls (fail closed).
            if let Some(certs) = request.peer_certs() {
                let tenant = certs
                    .first()
                    .and_then(|c| super::tenant::certificate_tenant(c))
                    .ok_or(ServiceError::PermissionDenied("CERTIFICATE_TENANT_MISSING"))?;
                request.extensions_mut().insert(Tenant(tenant));
            }
            return Ok(request);
        };
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(ServiceError::Unauthenticated("TOKEN_MISSING"))?;
        let tenant = verifier.verify(token.trim())?;
        request.extensions_mut().insert(tenant);
        Ok(request)
    }
}
