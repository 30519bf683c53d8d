//! Landlord: a Kubernetes multi-tenancy operator with an embedded quota engine.
//!
//! The library holds everything; `src/main.rs` is a thin CLI over it so that tests and
//! benchmarks reach the same code the binary runs.

pub mod api;
pub mod dev;
pub mod kube_client;
pub mod metrics;
pub mod operator;
pub mod quantity;
pub mod quota;
pub mod reconcile;
pub mod telemetry;
