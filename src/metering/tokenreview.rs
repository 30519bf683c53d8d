//! Callers of the quota API authenticate with their Kubernetes ServiceAccount token, verified
//! by a TokenReview. The caller's namespace maps to its tenant through the namespace's
//! `landlord.dev/tenant` label, and only if that tenant's status (which only the operator
//! writes) lists the namespace: anyone allowed to create and label a namespace could otherwise
//! speak for any tenant. Answers are cached so the hot path rarely leaves the process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use crate::api::Tenant;
use crate::engine_http::{AuthError, Authenticator, Caller};
use crate::naming::{TENANT_LABEL, is_ours};

/// How long a verified token is trusted before it is reviewed again.
const TTL: Duration = Duration::from_secs(60);
/// How long a refused token is remembered, to keep floods of bad tokens off the API server.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);
/// Most cached tokens; the cache is emptied when full.
const MAX_CACHED: usize = 10_000;

pub struct TokenReviewer {
    client: Client,
    /// Members of this group may act for any tenant.
    admin_group: Option<String>,
    cache: Mutex<HashMap<String, Cached>>,
}

/// A review's answer and when it was given.
type Cached = (Result<Caller, AuthError>, Instant);

impl TokenReviewer {
    pub fn new(client: Client, admin_group: Option<String>) -> Self {
        Self {
            client,
            admin_group,
            cache: Mutex::default(),
        }
    }

    async fn review(&self, token: &str) -> Result<Caller, AuthError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(AuthError::InvalidToken);
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        let groups = user.groups.unwrap_or_default();
        let admin = self
            .admin_group
            .as_ref()
            .is_some_and(|g| groups.iter().any(|x| x == g));
        let tenant = match service_account_namespace(&username) {
            Some(ns) => self.tenant_of(ns).await?,
            None => None,
        };
        Ok(Caller {
            tenant,
            admin,
            username,
            groups,
        })
    }
}

impl TokenReviewer {
    /// The tenant a namespace belongs to: named by its label and confirmed by the tenant.
    async fn tenant_of(&self, namespace: &str) -> Result<Option<String>, AuthError> {
        let unavailable = |e: kube::Error| AuthError::Unavailable(e.to_string());
        let found = Api::<Namespace>::all(self.client.clone())
            .get_opt(namespace)
            .await
            .map_err(unavailable)?;
        // Also made by Landlord for that tenant (named for it, applied by the operator), so a
        // namespace recreated under a listed name by someone else does not pass.
        let Some(claimed) = found.and_then(|n| {
            let claimed = n.labels().get(TENANT_LABEL)?.clone();
            is_ours(&n, &claimed).then_some(claimed)
        }) else {
            return Ok(None);
        };
        let tenant = Api::<Tenant>::all(self.client.clone())
            .get_opt(&claimed)
            .await
            .map_err(unavailable)?;
        Ok(tenant
            .is_some_and(|t| lists(&t, namespace))
            .then_some(claimed))
    }
}

/// Whether the tenant's status names the namespace as one it was given.
fn lists(tenant: &Tenant, namespace: &str) -> bool {
    tenant
        .status
        .as_ref()
        .is_some_and(|s| s.namespaces.iter().any(|n| n == namespace))
}

/// `system:serviceaccount:<namespace>:<name>` → `<namespace>`.
pub fn service_account_namespace(username: &str) -> Option<&str> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty()).then_some(namespace)
}

#[async_trait]
impl Authenticator for TokenReviewer {
    async fn authenticate(&self, bearer: &str) -> Result<Caller, AuthError> {
        let cached = self
            .cache
            .lock()
            .expect("not poisoned")
            .get(bearer)
            .cloned();
        if let Some((answer, at)) = &cached
            && at.elapsed() < ttl_of(answer)
        {
            return answer.clone();
        }
        let (answer, keep) = after_review(cached, self.review(bearer).await, Instant::now());
        if let Some(entry) = keep {
            let mut cache = self.cache.lock().expect("not poisoned");
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(bearer.to_string(), entry);
        }
        answer
    }
}

/// A caller with a tenant (or an admin) is settled; one without may be in a namespace the
/// operator is provisioning right now, so it is asked again soon, like a refusal.
fn ttl_of(answer: &Result<Caller, AuthError>) -> Duration {
    let settled = answer.as_ref().is_ok_and(|c| c.tenant.is_some() || c.admin);
    if settled { TTL } else { NEGATIVE_TTL }
}

/// How soon a caller kept through an outage is reviewed again.
const RECHECK: Duration = Duration::from_secs(5);

/// What a review's answer means for the caller and for the cache. An API server that cannot
/// be asked does not revoke a caller it verified before (fail static, as the engine's limits
/// are): the old answer stands, and is asked again after [`RECHECK`]. Without one, the
/// caller gets the failure (503) and nothing is cached, so the next call asks again.
fn after_review(
    cached: Option<Cached>,
    answer: Result<Caller, AuthError>,
    now: Instant,
) -> (Result<Caller, AuthError>, Option<Cached>) {
    match answer {
        Err(AuthError::Unavailable(_)) => match cached {
            Some((Ok(caller), _)) if ttl_of(&Ok(caller.clone())) == TTL => {
                let at = now.checked_sub(TTL - RECHECK).unwrap_or(now);
                (Ok(caller.clone()), Some((Ok(caller), at)))
            }
            _ => (answer, None),
        },
        answer => (answer.clone(), Some((answer, now))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(tenant: Option<&str>) -> Caller {
        Caller {
            tenant: tenant.map(str::to_string),
            admin: false,
            username: "system:serviceaccount:acme-app:worker".into(),
            groups: vec![],
        }
    }

    #[test]
    fn an_unreachable_api_server_keeps_verified_callers_and_nothing_else() {
        let now = Instant::now();
        let down = || Err(AuthError::Unavailable("connection refused".into()));
        // A verified caller stays verified, and is asked again in RECHECK.
        let old = now.checked_sub(Duration::from_secs(120)).unwrap_or(now);
        let (answer, kept) = after_review(Some((Ok(caller(Some("acme"))), old)), down(), now);
        assert_eq!(answer.unwrap().tenant.as_deref(), Some("acme"));
        let (_, at) = kept.unwrap();
        assert_eq!(
            ttl_of(&Ok(caller(Some("acme")))) - now.duration_since(at),
            RECHECK
        );
        // Never verified, refused, or without a tenant: the failure, nothing cached.
        for cached in [
            None,
            Some((Err(AuthError::InvalidToken), old)),
            Some((Ok(caller(None)), old)),
        ] {
            let (answer, kept) = after_review(cached, down(), now);
            assert!(matches!(answer, Err(AuthError::Unavailable(_))));
            assert!(kept.is_none());
        }
        // An answer is an answer: a refusal replaces what was verified.
        let (answer, kept) = after_review(
            Some((Ok(caller(Some("acme"))), old)),
            Err(AuthError::InvalidToken),
            now,
        );
        assert!(matches!(answer, Err(AuthError::InvalidToken)));
        assert_eq!(kept.unwrap().1, now);
    }

    #[test]
    fn only_namespaces_in_the_tenants_status_count() {
        let mut t = Tenant::new("acme", serde_json::from_str("{}").unwrap());
        assert!(!lists(&t, "acme-app"), "no status yet");
        t.status =
            Some(serde_json::from_value(serde_json::json!({"namespaces": ["acme-app"]})).unwrap());
        assert!(lists(&t, "acme-app"));
        assert!(!lists(&t, "acme-rogue"));
    }

    #[test]
    fn service_account_usernames_name_their_namespace() {
        assert_eq!(
            service_account_namespace("system:serviceaccount:acme-prod:api"),
            Some("acme-prod")
        );
        assert_eq!(service_account_namespace("alice"), None);
        assert_eq!(service_account_namespace("system:serviceaccount::x"), None);
        assert_eq!(service_account_namespace("system:serviceaccount:ns"), None);
    }
}
