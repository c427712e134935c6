//! Who is calling, and how fast they may open streams (R-SEC-5).
//!
//! The tenant of a call is the one its credentials name (a [`Tenant`] request extension set by
//! the authentication layer from a JWT claim or a client certificate's subject), else the
//! peer's IP address. Stream opens are rate-limited per *authenticated* tenant with a token
//! bucket (`governor`, GCRA): a tenant may open `burst` streams at once and `per_second` more
//! each second; beyond that a new stream fails with RESOURCE_EXHAUSTED and a `RetryInfo` saying
//! when the next one is allowed. Streams already open are not affected.
//!
//! Unauthenticated callers are not rate-limited by default: behind a media gateway, an L7 proxy
//! or a mesh sidecar every call comes from one peer address, and limiting that address as one
//! tenant throttles the whole contact centre as if it were one client
//! (`--stream-open-rate-by-peer` turns peer limiting on where clients connect directly).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The tenant a call was authenticated as (set by the authentication layer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(pub String);

/// Who is calling, read once from a request: the authenticated tenant, if any, and the key
/// of the per-tenant limits (that tenant, else the peer's IP address, else `unknown`). Never
/// logged.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The per-tenant key.
    pub(crate) key: Arc<str>,
    /// The tenant its credentials name; alerts and watchers are scoped to it.
    pub(crate) tenant: Option<Arc<str>>,
}

impl Caller {
    /// The caller of `request`.
    pub(crate) fn of<T>(request: &tonic::Request<T>) -> Caller {
        let tenant: Option<Arc<str>> = request
            .extensions()
            .get::<Tenant>()
            .map(|Tenant(t)| Arc::from(t.as_str()));
        let key = match (&tenant, request.remote_addr()) {
            (Some(tenant), _) => Arc::clone(tenant),
            (None, Some(addr)) => Arc::from(addr.ip().to_string()),
            (None, None) => Arc::from("unknown"),
        };
        Caller { key, tenant }
    }

    /// The key its stream opens are rate-limited by: its authenticated tenant, else (only when
    /// `by_peer`) its address; `None` when they are not limited.
    pub(crate) fn rate_key(&self, by_peer: bool) -> Option<&str> {
        match &self.tenant {
            Some(tenant) => Some(tenant),
            None => by_peer.then_some(&*self.key),
        }
    }
}

/// The tenant a client certificate names: its first URI subject alternative name (a mesh's
/// SPIFFE id), else its first DNS name, else its subject's common name, else its whole subject;
/// `None` when it cannot be read or names nothing usable.
pub(crate) fn certificate_tenant(der: &[u8]) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = certificate
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| ext.value.general_names.clone())
        .unwrap_or_default();
    let uri = san.iter().find_map(|n| match n {
        GeneralName::URI(u) => Some(u.to_string()),
        _ => None,
    });
    let dns = san.iter().find_map(|n| match n {
        GeneralName::DNSName(d) => Some(d.to_string()),
        _ => None,
    });
    let subject = certificate.subject();
    let name = uri.or(dns).unwrap_or_else(|| {
        subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| subject.to_string())
    });
    (!name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control)).then_some(name)
}

/// Live conversations per tenant, within a cap (R-CONV-1).
#[derive(Debug)]
pub(crate) struct TenantConversations {
    cap: usize,
    live: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl TenantConversations {
    /// A cap of `cap` live conversations per tenant; `None` when `cap` is zero (no cap).
    pub(crate) fn new(cap: usize) -> Option<Self> {
        (cap > 0).then(|| TenantConversations {
            cap,
            live: Default::default(),
        })
    }

    /// The cap.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Counts one more live conversation for `tenant`, unless it is at the cap.
    pub(crate) fn try_open(&self, tenant: &str) -> bool {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = live.entry(tenant.to_owned()).or_insert(0);
        if *count >= self.cap {
            return false;
        }
        *count += 1;
        true
    }

    /// `n` of `tenant`'s conversations ended.
    pub(crate) fn closed(&self, tenant: &str, n: usize) {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = live.get_mut(tenant) {
            *count = count.saturating_sub(n);
            if *count == 0 {
                live.remove(tenant);
            }
        }
    }
}

/// Forget idle tenants' buckets every this many checks, so the map stays bounded.
const RETAIN_EVERY: u64 = 1_024;

/// Stream opens per tenant.
#[derive(Debug)]
pub(crate) struct OpenRate {
    limiter: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl OpenRate {
    /// `per_second` opens a second with bursts of `burst`; `None` when `per_second` is zero
    /// (no limit).
    pub(crate) fn new(per_second: f64, burst: u32) -> Option<Self> {
        if per_second <= 0.0 || !per_second.is_finite() {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst.max(1))?);
        Some(OpenRate {
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
        })
    }

    /// Takes one open for `tenant`, or says how long until one is allowed.
    pub(crate) fn admit(&self, tenant: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.limiter.retain_recent();
        }
        let key = tenant.to_owned();
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_gets_its_burst_then_waits_while_others_are_unaffected() {
        let rate = OpenRate::new(10.0, 50).unwrap();
        let admitted = (0..100).filter(|_| rate.admit("a").is_ok()).count();
        assert!((50..=52).contains(&admitted), "{admitted}");
        let wait = rate.admit("a").unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(rate.admit("b").is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(OpenRate::new(0.0, 50).is_none());
    }
}
