//! Test hooks: request counters, fault injection, watch control.
use crate::Shared;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A fault to inject into matching requests. `None` fields match anything.
#[derive(Debug, Clone, Default)]
pub struct Injection {
    /// get|list|watch|create|update|patch|delete|deletecollection
    pub verb: Option<String>,
    /// Plural resource name, e.g. "namespaces", or "tenants/status" for a subresource.
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// HTTP status code to answer with (a Status object); `None` = only add latency.
    pub status: Option<u16>,
    pub message: Option<String>,
    pub latency: Option<Duration>,
    /// Only the next N matching requests (`None` = until cleared).
    pub times: Option<u64>,
    /// Only this fraction of the matching requests, drawn at random for each; the others
    /// go on to the next injection that matches (`None` = every one).
    pub probability: Option<f64>,
}

impl Injection {
    /// Fail matching requests with this HTTP status code.
    pub fn error(code: u16) -> Self {
        Injection {
            status: Some(code),
            ..Default::default()
        }
    }
    /// Delay matching requests.
    pub fn delay(latency: Duration) -> Self {
        Injection {
            latency: Some(latency),
            ..Default::default()
        }
    }
    pub fn verb(mut self, v: &str) -> Self {
        self.verb = Some(v.into());
        self
    }
    pub fn resource(mut self, r: &str) -> Self {
        self.resource = Some(r.into());
        self
    }
    pub fn namespace(mut self, n: &str) -> Self {
        self.namespace = Some(n.into());
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.into());
        self
    }
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }
    pub fn message(mut self, m: &str) -> Self {
        self.message = Some(m.into());
        self
    }
    /// Fault only this fraction (0..1) of the matching requests, at random.
    pub fn chance(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }
    pub fn with_latency(mut self, d: Duration) -> Self {
        self.latency = Some(d);
        self
    }
    fn matches(&self, verb: &str, resource: &str, ns: &str, name: &str) -> bool {
        let m = |f: &Option<String>, v: &str| f.as_ref().is_none_or(|x| x == "*" || x == v);
        m(&self.verb, verb)
            && m(&self.resource, resource)
            && m(&self.namespace, ns)
            && m(&self.name, name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InjectionId(pub u64);

#[derive(Default)]
pub(crate) struct HookData {
    counts: Mutex<HashMap<(String, String), u64>>,
    injections: Mutex<Vec<(InjectionId, Injection)>>,
    next_id: AtomicU64,
    /// Requests answered with an injected error status.
    failed: AtomicU64,
}

impl HookData {
    pub(crate) fn record(&self, verb: &str, resource: &str) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry((verb.into(), resource.into()))
            .or_default() += 1;
    }
    /// The fault (status, message, latency) for a request, consuming one use.
    pub(crate) fn fault(
        &self,
        verb: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Option<(Option<u16>, Option<String>, Option<Duration>)> {
        let mut inj = self.injections.lock().unwrap();
        let idx = inj.iter().position(|(_, i)| {
            i.matches(verb, resource, ns, name)
                && i.probability.is_none_or(|p| rand::random::<f64>() < p)
        })?;
        let i = inj[idx].1.clone();
        if i.status.is_some() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(t) = inj[idx].1.times.as_mut() {
            *t = t.saturating_sub(1);
            if *t == 0 {
                inj.remove(idx);
            }
        }
        Some((i.status, i.message, i.latency))
    }
}

/// Cloneable handle on the server's test hooks.
#[derive(Clone)]
pub struct Hooks {
    pub(crate) shared: Arc<Shared>,
}

impl Hooks {
    /// Requests served for `verb` on `resource` (plural; "x/status" for subresources); "*" matches all.
    pub fn request_count(&self, verb: &str, resource: &str) -> u64 {
        self.shared
            .hooks
            .counts
            .lock()
            .unwrap()
            .iter()
            .filter(|((v, r), _)| (verb == "*" || v == verb) && (resource == "*" || r == resource))
            .map(|(_, c)| *c)
            .sum()
    }
    /// create+update+patch+delete requests over all resources.
    pub fn write_count(&self) -> u64 {
        ["create", "update", "patch", "delete"]
            .iter()
            .map(|v| self.request_count(v, "*"))
            .sum()
    }
    /// Requests answered with an injected error status so far.
    pub fn faults_injected(&self) -> u64 {
        self.shared.hooks.failed.load(Ordering::Relaxed)
    }
    pub fn reset_counts(&self) {
        self.shared.hooks.counts.lock().unwrap().clear();
    }
    pub fn counts(&self) -> Vec<(String, String, u64)> {
        let mut v: Vec<_> = self
            .shared
            .hooks
            .counts
            .lock()
            .unwrap()
            .iter()
            .map(|((a, b), c)| (a.clone(), b.clone(), *c))
            .collect();
        v.sort();
        v
    }
    pub fn inject(&self, rule: Injection) -> InjectionId {
        let id = InjectionId(self.shared.hooks.next_id.fetch_add(1, Ordering::SeqCst) + 1);
        self.shared
            .hooks
            .injections
            .lock()
            .unwrap()
            .push((id, rule));
        id
    }
    pub fn clear_injection(&self, id: InjectionId) {
        self.shared
            .hooks
            .injections
            .lock()
            .unwrap()
            .retain(|(i, _)| *i != id);
    }
    pub fn clear_all_injections(&self) {
        self.shared.hooks.injections.lock().unwrap().clear();
    }
    /// Close every open watch stream (clients see the stream end and re-watch).
    pub fn drop_watches(&self) {
        self.shared.state.lock().unwrap().watchers.clear();
    }
    /// Forget the watch history (like an etcd compaction): watches from any
    /// older resourceVersion get `410 Expired`.
    pub fn compact(&self) {
        let mut s = self.shared.state.lock().unwrap();
        s.history.clear();
        s.compacted_rv = s.rv;
    }
    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.state.lock().unwrap().rv
    }
}
