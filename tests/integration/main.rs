//! The `landlord` binary, unmodified, against an API server: kube-test by default, or the
//! cluster in KUBECONFIG when `LANDLORD_E2E=1` (`make e2e`, and the second half of
//! `make test`). Tests use only the Kubernetes API and the operator's own HTTP ports, so the
//! same assertions hold on both.

mod support;

#[path = "../admission_table/mod.rs"]
mod admission_table;

mod admission;
mod crashes;
mod engine;
mod failover;
mod faults;
mod leader;
mod life;
mod metrics;
mod migration;
mod outage;
mod privileges;
mod provisioning;
mod quotas;
mod ratelimit;
mod scale;
mod steady_state;
mod suspension;
