//! The plugin's one error type: a message that says what to do, and the exit code it ends
//! with. Kubernetes errors are turned into such messages here, in one place.

use std::fmt;

/// Exit code of every error but the two below.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of a `--wait` whose target was not reached in `--timeout` (clap uses 2 for a
/// command line it cannot parse).
pub const EXIT_TIMEOUT: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_ERROR,
        }
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_TIMEOUT,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        Failure::new(explain(&e))
    }
}

/// `tenant "acme" not found; "kubectl tenant list" shows the tenants`.
pub fn tenant_not_found(name: &str) -> Failure {
    Failure::new(format!(
        "tenant {name:?} not found; \"kubectl tenant list\" shows the tenants"
    ))
}

/// `plan "gold" not found; "kubectl tenant plans" shows the plans`.
pub fn plan_not_found(name: &str) -> Failure {
    Failure::new(format!(
        "plan {name:?} not found; \"kubectl tenant plans\" shows the plans"
    ))
}

/// Whether the API server answered 404 for an object (not for a whole resource type).
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 && !resource_missing(s))
}

/// A 404 without an object name: the resource type itself is not served, so Landlord's CRDs
/// are not installed.
fn resource_missing(s: &kube::core::Status) -> bool {
    s.code == 404 && s.details.as_ref().is_none_or(|d| d.name.is_empty())
}

/// A Kubernetes error in words a user can act on.
pub fn explain(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if resource_missing(s) => format!(
            "the server does not serve Landlord's API ({}): install Landlord's CRDs first \
             (\"kubectl get crd tenants.landlord.dev\" checks; see Landlord's README, Install)",
            s.message
        ),
        kube::Error::Api(s) if s.code == 401 => format!(
            "unauthorized ({}): check the credentials of your kubeconfig context",
            s.message
        ),
        kube::Error::Api(s) if s.code == 403 => format!(
            "forbidden: {}; ask a cluster admin for access to Landlord's resources",
            s.message
        ),
        kube::Error::Api(s) => s.message.clone(),
        kube::Error::HyperError(_) | kube::Error::Service(_) => format!(
            "cannot reach the API server ({}): check --kubeconfig and --context, and that the \
             cluster is up",
            chain(e)
        ),
        other => chain(other),
    }
}

/// An error and its sources, `: `-separated, without repeats.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use kube::core::response::StatusDetails;

    fn api(code: u16, message: &str, name: &str) -> kube::Error {
        let mut status = Status::failure(message, "");
        status.code = code;
        if !name.is_empty() {
            status.details = Some(StatusDetails {
                name: name.into(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: Vec::new(),
                retry_after_seconds: 0,
            });
        }
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn a_missing_object_is_not_a_missing_api() {
        let object = api(404, "tenants.landlord.dev \"acme\" not found", "acme");
        assert!(is_not_found(&object));
        assert_eq!(explain(&object), "tenants.landlord.dev \"acme\" not found");
        let resource = api(404, "the server could not find the requested resource", "");
        assert!(!is_not_found(&resource));
        assert_eq!(
            explain(&resource),
            "the server does not serve Landlord's API (the server could not find the requested \
             resource): install Landlord's CRDs first (\"kubectl get crd tenants.landlord.dev\" \
             checks; see Landlord's README, Install)"
        );
    }

    #[test]
    fn refusals_say_what_to_do() {
        assert_eq!(
            explain(&api(
                403,
                "tenants is forbidden: User \"bob\" cannot list",
                ""
            )),
            "forbidden: tenants is forbidden: User \"bob\" cannot list; ask a cluster admin for \
             access to Landlord's resources"
        );
        assert_eq!(
            tenant_not_found("acme").to_string(),
            "tenant \"acme\" not found; \"kubectl tenant list\" shows the tenants"
        );
    }
}
