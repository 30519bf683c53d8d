//! Landlord: a Kubernetes multi-tenancy operator with an embedded quota engine.
//!
//! The library holds everything; `src/main.rs` is a thin CLI over it so that tests and
//! benchmarks reach the same code the binary runs.

#![deny(unsafe_code)]

pub mod api;
pub mod archive;
pub mod controller;
#[cfg(feature = "dev")]
pub mod dev;
pub mod duration;
pub mod engine;
pub mod engine_http;
pub mod kube_client;
pub mod metering;
pub mod metrics;
pub mod naming;
pub mod operator;
pub mod quantity;
pub mod telemetry;
