//! Who is calling the quota API.
//!
//! The operator authenticates callers with their ServiceAccount token through a TokenReview;
//! that implementation lives with the operator. [`StaticTokens`] is for tests and local runs.

use std::collections::HashMap;

use async_trait::async_trait;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant whose workloads the caller belongs to; `None` for callers outside tenants.
    pub tenant: Option<String>,
    /// May act for any tenant (gateways, the operator itself).
    pub admin: bool,
    pub username: String,
    /// The groups the token's user is in (for a ServiceAccount: `system:serviceaccounts`,
    /// `system:serviceaccounts:<namespace>`, `system:authenticated`); Envoy's rate limit
    /// service admits callers by group.
    pub groups: Vec<String>,
}

impl Caller {
    /// Whether this caller may check, charge and read `tenant`.
    pub fn may_act_for(&self, tenant: &str) -> bool {
        self.admin || self.tenant.as_deref() == Some(tenant)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("authentication unavailable: {0}")]
    Unavailable(String),
    /// Too many tokens are being verified at once; the caller should retry shortly.
    #[error("too many tokens are being verified at once; retry after 1 s")]
    Busy,
}

#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Resolves a bearer token (without the `Bearer ` prefix) into a caller.
    async fn authenticate(&self, bearer: &str) -> Result<Caller, AuthError>;
}

/// A fixed token table.
#[derive(Debug, Clone, Default)]
pub struct StaticTokens {
    tokens: HashMap<String, Caller>,
}

impl StaticTokens {
    pub fn new() -> Self {
        Self::default()
    }

    /// A token acting for one tenant.
    pub fn tenant(mut self, token: &str, tenant: &str) -> Self {
        self.tokens.insert(
            token.to_owned(),
            Caller {
                tenant: Some(tenant.to_owned()),
                admin: false,
                username: format!("system:serviceaccount:{tenant}:default"),
                groups: vec![format!("system:serviceaccounts:{tenant}")],
            },
        );
        self
    }

    /// A token acting for every tenant.
    pub fn admin(mut self, token: &str, username: &str) -> Self {
        self.tokens.insert(
            token.to_owned(),
            Caller {
                tenant: None,
                admin: true,
                username: username.to_owned(),
                groups: Vec::new(),
            },
        );
        self
    }

    /// A token of a caller outside tenants, in `groups` (a gateway).
    pub fn member(mut self, token: &str, username: &str, groups: &[&str]) -> Self {
        self.tokens.insert(
            token.to_owned(),
            Caller {
                tenant: None,
                admin: false,
                username: username.to_owned(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
        );
        self
    }
}

#[async_trait]
impl Authenticator for StaticTokens {
    async fn authenticate(&self, bearer: &str) -> Result<Caller, AuthError> {
        self.tokens
            .get(bearer)
            .cloned()
            .ok_or(AuthError::InvalidToken)
    }
}
