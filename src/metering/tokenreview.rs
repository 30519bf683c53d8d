//! Callers of the quota API authenticate with their Kubernetes ServiceAccount token, verified
//! by a TokenReview. The caller's namespace maps to its tenant through the namespace's
//! `landlord.dev/tenant` label, and only if that tenant's status (which only the operator
//! writes) lists the namespace: anyone allowed to create and label a namespace could otherwise
//! speak for any tenant. Answers are cached so the hot path rarely leaves the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::Tenant;
use crate::engine_http::{AuthError, Authenticator, Caller};
use crate::naming::{TENANT_LABEL, is_ours};

/// How long a verified token is trusted before it is reviewed again.
const TTL: Duration = Duration::from_secs(60);
/// How long a refused token is remembered, to keep floods of bad tokens off the API server.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);
/// Most cached tokens; the cache is emptied when full.
const MAX_CACHED: usize = 10_000;
/// Most reviews in flight at once by default (`--engine-max-token-reviews`). The caches
/// cannot stop a flood of *different* tokens, each seen once; this cap does: callers beyond
/// it get [`AuthError::Busy`] (503 with `Retry-After`) at once instead of a queue of reviews
/// at the API server.
pub const MAX_REVIEWS_IN_FLIGHT: usize = 32;

/// One verification of a token: a TokenReview and the lookups that find its tenant. A trait so
/// the cache, the cap and the sharing are tested without Kubernetes.
#[async_trait]
pub trait Review: Send + Sync + 'static {
    async fn review(&self, token: &str) -> Result<Caller, AuthError>;
}

/// Verifies tokens through [`Review`], with a cache, a negative cache, a cap on reviews in
/// flight and one review for concurrent callers with the same token (single flight).
pub struct TokenReviewer {
    reviewer: Arc<dyn Review>,
    state: Arc<Mutex<State>>,
    reviews: Arc<Semaphore>,
}

#[derive(Default)]
struct State {
    cache: HashMap<String, Cached>,
    /// Reviews under way, by token; every caller with that token awaits the same one.
    pending: HashMap<String, Pending>,
}

type Pending = Shared<BoxFuture<'static, Result<Caller, AuthError>>>;

/// A review's answer and when it was given.
type Cached = (Result<Caller, AuthError>, Instant);

impl TokenReviewer {
    /// TokenReviews through `client`, at most `in_flight` at once.
    pub fn new(client: Client, admin_group: Option<String>, in_flight: usize) -> Self {
        Self::with_reviewer(
            Arc::new(KubeReview {
                client,
                admin_group,
            }),
            in_flight,
        )
    }

    /// With another way to review, and at most `in_flight` reviews at once.
    pub fn with_reviewer(reviewer: Arc<dyn Review>, in_flight: usize) -> Self {
        Self {
            reviewer,
            state: Arc::default(),
            reviews: Arc::new(Semaphore::new(in_flight)),
        }
    }
}

/// Reviews one token, then caches the answer. It runs as its own task, so a caller that goes
/// away does not leave the review, its slot or its entry in `pending` behind.
async fn review_once(
    reviewer: Arc<dyn Review>,
    state: Arc<Mutex<State>>,
    token: String,
    cached: Option<Cached>,
    slot: OwnedSemaphorePermit,
) -> Result<Caller, AuthError> {
    let answer = reviewer.review(&token).await;
    drop(slot);
    let (answer, keep) = after_review(cached, answer, Instant::now());
    let mut state = state.lock().expect("not poisoned");
    state.pending.remove(&token);
    if let Some(entry) = keep {
        if state.cache.len() >= MAX_CACHED {
            state.cache.clear();
        }
        state.cache.insert(token, entry);
    }
    answer
}

/// Reviews tokens with the API server.
struct KubeReview {
    client: Client,
    /// Members of this group may act for any tenant.
    admin_group: Option<String>,
}

#[async_trait]
impl Review for KubeReview {
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

impl KubeReview {
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
        let pending = {
            let mut state = self.state.lock().expect("not poisoned");
            let cached = state.cache.get(bearer).cloned();
            if let Some((answer, at)) = &cached
                && at.elapsed() < ttl_of(answer)
            {
                return answer.clone();
            }
            if let Some(pending) = state.pending.get(bearer) {
                pending.clone()
            } else {
                let Ok(slot) = self.reviews.clone().try_acquire_owned() else {
                    let (answer, keep) = after_review(cached, Err(AuthError::Busy), Instant::now());
                    if let Some(entry) = keep {
                        state.cache.insert(bearer.to_string(), entry);
                    }
                    return answer;
                };
                let task = tokio::spawn(review_once(
                    self.reviewer.clone(),
                    self.state.clone(),
                    bearer.to_string(),
                    cached,
                    slot,
                ));
                let pending = async move {
                    task.await.unwrap_or_else(|e| {
                        Err(AuthError::Unavailable(format!(
                            "the token review failed: {e}"
                        )))
                    })
                }
                .boxed()
                .shared();
                state.pending.insert(bearer.to_string(), pending.clone());
                pending
            }
        };
        pending.await
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
/// be asked (or a review that could not start, [`AuthError::Busy`]) does not revoke a caller
/// it verified before (fail static, as the engine's limits are): the old answer stands, and
/// is asked again after [`RECHECK`]. Without one, the caller gets the failure (503) and
/// nothing is cached, so the next call asks again.
fn after_review(
    cached: Option<Cached>,
    answer: Result<Caller, AuthError>,
    now: Instant,
) -> (Result<Caller, AuthError>, Option<Cached>) {
    match answer {
        Err(AuthError::Unavailable(_) | AuthError::Busy) => match cached {
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

    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Refuses every token but `good`, once `gate` opens; counts calls and the most at once.
    struct Fake {
        gate: Semaphore,
        calls: AtomicUsize,
        now: AtomicUsize,
        most: AtomicUsize,
    }

    impl Default for Fake {
        fn default() -> Self {
            Self {
                gate: Semaphore::new(0),
                calls: AtomicUsize::new(0),
                now: AtomicUsize::new(0),
                most: AtomicUsize::new(0),
            }
        }
    }

    #[async_trait]
    impl Review for Fake {
        async fn review(&self, token: &str) -> Result<Caller, AuthError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            drop(self.gate.acquire().await.expect("open"));
            self.now.fetch_sub(1, Ordering::SeqCst);
            if token == "good" {
                Ok(caller(Some("acme")))
            } else {
                Err(AuthError::InvalidToken)
            }
        }
    }

    #[tokio::test]
    async fn a_flood_of_distinct_bad_tokens_reviews_at_most_the_cap_at_once() {
        use futures::StreamExt as _;
        let fake = Arc::new(Fake::default());
        let reviewer = TokenReviewer::with_reviewer(fake.clone(), 8);
        let mut answers: futures::stream::FuturesUnordered<_> = (0..1_000)
            .map(|i| {
                let reviewer = &reviewer;
                async move { reviewer.authenticate(&format!("bad-{i}")).await }
            })
            .collect();
        // Beyond the cap, callers are told at once, while the reviews still wait at the gate.
        for _ in 0..992 {
            assert_eq!(answers.next().await, Some(Err(AuthError::Busy)));
        }
        // The eight reviews start (each its own task) and wait at the gate together.
        let deadline = Instant::now() + Duration::from_secs(60);
        while fake.now.load(Ordering::SeqCst) < 8 {
            assert!(Instant::now() < deadline, "the reviews never started");
            tokio::task::yield_now().await;
        }
        fake.gate.add_permits(1_000);
        for _ in 0..8 {
            assert_eq!(answers.next().await, Some(Err(AuthError::InvalidToken)));
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 8);
        assert_eq!(fake.most.load(Ordering::SeqCst), 8);
        // The refusals are remembered; the slots are free again.
        assert_eq!(
            reviewer.authenticate("bad-0").await,
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            reviewer
                .authenticate("good")
                .await
                .unwrap()
                .tenant
                .as_deref(),
            Some("acme")
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), 9);
    }

    #[tokio::test]
    async fn concurrent_callers_with_one_token_share_one_review() {
        let fake = Arc::new(Fake::default());
        let reviewer = TokenReviewer::with_reviewer(fake.clone(), 1);
        let callers = futures::future::join_all((0..100).map(|_| reviewer.authenticate("good")));
        let open = async {
            fake.gate.add_permits(1);
        };
        let (answers, ()) = tokio::join!(callers, open);
        assert_eq!(answers.len(), 100);
        assert!(answers.iter().all(|a| {
            a.as_ref()
                .is_ok_and(|c| c.tenant.as_deref() == Some("acme"))
        }));
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        // And the answer is cached.
        reviewer.authenticate("good").await.unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_busy_reviewer_keeps_a_caller_it_verified_before() {
        let fake = Arc::new(Fake::default());
        fake.gate.add_permits(1_000);
        let reviewer = TokenReviewer::with_reviewer(fake.clone(), 1);
        let old = Instant::now()
            .checked_sub(Duration::from_secs(120))
            .expect("uptime");
        reviewer
            .state
            .lock()
            .unwrap()
            .cache
            .insert("good".into(), (Ok(caller(Some("acme"))), old));
        // The only slot is taken: the stale but verified caller stands.
        let slot = reviewer.reviews.clone().try_acquire_owned().unwrap();
        assert_eq!(
            reviewer
                .authenticate("good")
                .await
                .unwrap()
                .tenant
                .as_deref(),
            Some("acme")
        );
        assert_eq!(reviewer.authenticate("new").await, Err(AuthError::Busy));
        drop(slot);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
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
