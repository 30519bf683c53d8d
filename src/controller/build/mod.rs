//! The build step: pure functions from a tenant, its plan and what was observed to the
//! objects it should have. `effective` merges plan and overrides, `partition` and `quotas`
//! split tenant-wide limits into namespace quotas, `desired` makes the objects.

pub mod desired;
pub mod effective;
pub mod partition;
pub mod quotas;

pub use desired::{Desired, Inputs, build};
