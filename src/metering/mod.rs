//! The operator's side of the quota engine: plans become engine limits (`plan`), usage is
//! kept in `TenantUsage` (`ledger`), and callers are authenticated by TokenReview
//! (`tokenreview`).

pub mod ledger;
pub mod plan;
pub mod tokenreview;
