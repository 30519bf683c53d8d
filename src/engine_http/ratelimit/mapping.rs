//! Envoy's rate limit requests as engine checks, and the engine's answers as Envoy's
//! responses. Pure: the service around it authenticates and calls the engine.
//!
//! A descriptor is one check:
//! - the entry `tenant` names the tenant;
//! - the entry `dimension` names the dimension; without one, the request's `domain` does;
//! - every other entry is a check attribute (`queue: reports`), judged by the tenant's
//!   allowed-values rules;
//! - the amount is the descriptor's own `hits_addend` if set, else the request's; 0 means 1.
//!
//! A descriptor with `is_negative_hits` (Envoy giving back what it charged) is answered `OK`
//! and changes nothing: the engine never gives units back. A descriptor's `limit` override is
//! ignored: the tenant's plan is the limit.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf;

use crate::engine::{AllChecked, Check, Checked, MAX_AMOUNT, Window};

/// The descriptor entry naming the tenant.
pub const TENANT_KEY: &str = "tenant";
/// The descriptor entry naming the dimension (else the request's domain names it).
pub const DIMENSION_KEY: &str = "dimension";
/// Most descriptors in one request.
pub const MAX_DESCRIPTORS: usize = 1_000;

/// What a descriptor the engine cannot answer gets: one naming no tenant, or a tenant or
/// dimension the engine does not know (or a concurrency or gauge dimension, which a gateway
/// cannot charge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unknown {
    /// `OK`, and the rest of the request is decided without it (what Envoy's reference
    /// service does for descriptors without a configured limit).
    Allow,
    /// `OVER_LIMIT`, which refuses the whole request.
    Deny,
}

/// A request Envoy should not have sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("a rate limit request needs at least one descriptor")]
    NoDescriptors,
    #[error("at most {MAX_DESCRIPTORS} descriptors per request, got {0}")]
    TooManyDescriptors(usize),
    #[error("descriptor {index}: hits_addend must be at most 2^53, got {amount}")]
    BadAmount { index: usize, amount: u64 },
}

/// One descriptor as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor<'a> {
    /// Empty when the descriptor names no tenant: no tenant has that name.
    pub tenant: &'a str,
    pub dimension: &'a str,
    pub amount: u64,
    pub attributes: Vec<(&'a str, &'a str)>,
    /// Envoy giving units back: answered `OK`, not checked.
    pub negative: bool,
}

impl Descriptor<'_> {
    pub fn check(&self) -> Check<'_> {
        Check {
            tenant: self.tenant,
            dimension: self.dimension,
            amount: self.amount,
            attributes: &self.attributes,
        }
    }
}

/// The descriptors of `request`, in order.
pub fn descriptors(request: &RateLimitRequest) -> Result<Vec<Descriptor<'_>>, BadRequest> {
    match request.descriptors.len() {
        0 => return Err(BadRequest::NoDescriptors),
        n if n > MAX_DESCRIPTORS => return Err(BadRequest::TooManyDescriptors(n)),
        _ => {}
    }
    request
        .descriptors
        .iter()
        .enumerate()
        .map(|(index, d)| descriptor(request, index, d))
        .collect()
}

fn descriptor<'a>(
    request: &'a RateLimitRequest,
    index: usize,
    d: &'a RateLimitDescriptor,
) -> Result<Descriptor<'a>, BadRequest> {
    let mut tenant = None;
    let mut dimension = None;
    let mut attributes = Vec::new();
    for e in &d.entries {
        match e.key.as_str() {
            TENANT_KEY if tenant.is_none() => tenant = Some(e.value.as_str()),
            DIMENSION_KEY if dimension.is_none() => dimension = Some(e.value.as_str()),
            key => attributes.push((key, e.value.as_str())),
        }
    }
    let hits = d
        .hits_addend
        .as_ref()
        .map_or(u64::from(request.hits_addend), |h| h.value);
    let amount = hits.max(1);
    if amount > MAX_AMOUNT {
        return Err(BadRequest::BadAmount { index, amount });
    }
    Ok(Descriptor {
        tenant: tenant.unwrap_or_default(),
        dimension: dimension.unwrap_or(request.domain.as_str()),
        amount,
        attributes,
        negative: d.is_negative_hits,
    })
}

/// Envoy's answer: `overall_code` `OK` when every checked descriptor was charged (nothing is
/// charged otherwise), a status per descriptor in order, and `x-ratelimit-*` headers from the
/// descriptor that decided (see [`headers`]).
///
/// `answers` holds one answer per descriptor that is not `negative`, in order.
pub fn response(
    descriptors: &[Descriptor<'_>],
    answers: &AllChecked,
    unknown: Unknown,
) -> RateLimitResponse {
    let mut checked = answers.checks.iter();
    let statuses: Vec<DescriptorStatus> = descriptors
        .iter()
        .map(|d| {
            if d.negative {
                return status(Code::Ok);
            }
            match checked.next().expect("one answer per checked descriptor") {
                Ok(c) => descriptor_status(d.dimension, c),
                Err(_) if unknown == Unknown::Allow => status(Code::Ok),
                Err(_) => status(Code::OverLimit),
            }
        })
        .collect();
    let overall = if answers.allowed {
        Code::Ok
    } else {
        Code::OverLimit
    };
    RateLimitResponse {
        overall_code: overall as i32,
        response_headers_to_add: headers(&statuses, answers.allowed),
        statuses,
        ..Default::default()
    }
}

fn status(code: Code) -> DescriptorStatus {
    DescriptorStatus {
        code: code as i32,
        ..Default::default()
    }
}

/// A checked descriptor's status: its own code (`OK` if it passed by itself, even when
/// another descriptor refused the request), the rate limit that decided it as
/// `current_limit`, what remains of it, and how long until it resets: the wait a refusal
/// names, else until the limit is whole again.
pub fn descriptor_status(dimension: &str, c: &Checked) -> DescriptorStatus {
    let d = &c.decision;
    let code = if d.allowed { Code::Ok } else { Code::OverLimit };
    let reset = match (d.allowed, d.retry_after_ms) {
        (false, Some(ms)) => Some(Duration::from_millis(ms)),
        _ => c.window.map(|w| w.reset_after),
    };
    DescriptorStatus {
        code: code as i32,
        current_limit: c.window.map(|w| current_limit(dimension, &w)),
        limit_remaining: c.window.and(d.remaining).map_or(0, saturate),
        duration_until_reset: reset.map(proto_duration),
        quota: None,
    }
}

/// The units Envoy knows, in seconds.
const UNITS: [(u64, Unit); 5] = [
    (1, Unit::Second),
    (60, Unit::Minute),
    (3_600, Unit::Hour),
    (86_400, Unit::Day),
    (604_800, Unit::Week),
];

/// The rate limit `limit` per `per` as Envoy's `requests_per_unit` and `unit`: exact when
/// `per` is one of Envoy's units (a second, minute, hour, day or week); otherwise in the
/// largest unit not longer than `per` (a second for shorter periods), scaled and rounded
/// down, at least 1: 100 per 10 s is 10 per second.
pub fn current_limit(dimension: &str, w: &Window) -> RateLimit {
    let per = w.per.as_nanos().max(1);
    let (unit_secs, unit) = UNITS
        .iter()
        .rev()
        .find(|(s, _)| u128::from(*s) * 1_000_000_000 <= per)
        .copied()
        .unwrap_or(UNITS[0]);
    let scaled = u128::from(w.limit) * u128::from(unit_secs) * 1_000_000_000 / per;
    RateLimit {
        name: dimension.to_owned(),
        requests_per_unit: u32::try_from(scaled).unwrap_or(u32::MAX).max(1),
        unit: unit as i32,
    }
}

fn unit_seconds(unit: i32) -> u64 {
    UNITS
        .iter()
        .find(|(_, u)| *u as i32 == unit)
        .map_or(1, |(s, _)| *s)
}

/// `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (the IETF draft's
/// headers, as Envoy writes them) for the descriptor that decided: the first refused one
/// with a limit when the request was refused, else the one with the least remaining. None
/// when no descriptor has a rate limit.
pub fn headers(statuses: &[DescriptorStatus], allowed: bool) -> Vec<HeaderValue> {
    let limited = || statuses.iter().filter(|s| s.current_limit.is_some());
    let refused = limited().find(|s| s.code == Code::OverLimit as i32);
    let decided = match (allowed, refused) {
        (false, Some(s)) => Some(s),
        _ => limited().min_by_key(|s| s.limit_remaining),
    };
    let Some(s) = decided else {
        return Vec::new();
    };
    let limit = s.current_limit.as_ref().expect("filtered");
    let window = unit_seconds(limit.unit);
    let reset = s.duration_until_reset.as_ref().map_or(0, |d| {
        let secs = u64::try_from(d.seconds).unwrap_or(0);
        secs + u64::from(d.nanos > 0)
    });
    let header = |key: &str, value: String| HeaderValue {
        key: key.to_owned(),
        value,
        raw_value: Vec::new(),
    };
    vec![
        header(
            "x-ratelimit-limit",
            format!("{0}, {0};w={window}", limit.requests_per_unit),
        ),
        header("x-ratelimit-remaining", s.limit_remaining.to_string()),
        header("x-ratelimit-reset", reset.to_string()),
    ]
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn proto_duration(d: Duration) -> protobuf::Duration {
    protobuf::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).expect("below 10^9"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Decision, EngineError, Reason};
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;

    fn descriptor(entries: &[(&str, &str)], hits: Option<u64>) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            hits_addend: hits.map(|value| protobuf::UInt64Value { value }),
            ..Default::default()
        }
    }

    fn request(hits_addend: u32, descriptors: Vec<RateLimitDescriptor>) -> RateLimitRequest {
        RateLimitRequest {
            domain: "api-calls".into(),
            descriptors,
            hits_addend,
        }
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn descriptors_name_tenant_dimension_attributes_and_amount() {
        let r = request(
            0,
            vec![
                descriptor(&[("tenant", "acme"), ("dimension", "tasks")], None),
                // No dimension entry: the domain names it; other entries are attributes.
                descriptor(&[("queue", "reports"), ("tenant", "acme")], Some(2048)),
                descriptor(&[("dimension", "tasks")], Some(0)),
            ],
        );
        let d = descriptors(&r).unwrap();
        let plain = |tenant, dimension, amount, attributes| Descriptor {
            tenant,
            dimension,
            amount,
            attributes,
            negative: false,
        };
        assert_eq!(
            d,
            [
                plain("acme", "tasks", 1, vec![]),
                plain("acme", "api-calls", 2048, vec![("queue", "reports")]),
                // No tenant: empty, a name no tenant has; hits 0 means 1.
                plain("", "tasks", 1, vec![]),
            ]
        );
        // The request's hits_addend applies where a descriptor sets none.
        let r = request(5, vec![descriptor(&[("tenant", "acme")], None)]);
        assert_eq!(descriptors(&r).unwrap()[0].amount, 5);
    }

    #[test]
    fn requests_envoy_should_not_send_are_refused() {
        assert_eq!(
            descriptors(&request(1, vec![])),
            Err(BadRequest::NoDescriptors)
        );
        let many = vec![descriptor(&[("tenant", "acme")], None); MAX_DESCRIPTORS + 1];
        assert_eq!(
            descriptors(&request(1, many)),
            Err(BadRequest::TooManyDescriptors(1001))
        );
        let huge = descriptor(&[("tenant", "acme")], Some(MAX_AMOUNT + 1));
        assert_eq!(
            descriptors(&request(1, vec![descriptor(&[], None), huge])),
            Err(BadRequest::BadAmount {
                index: 1,
                amount: MAX_AMOUNT + 1
            })
        );
    }

    #[test]
    fn periods_become_envoy_units() {
        let limit = |limit, per| {
            let w = Window {
                limit,
                per,
                reset_after: Duration::ZERO,
            };
            let l = current_limit("api-calls", &w);
            (l.requests_per_unit, Unit::try_from(l.unit).unwrap())
        };
        assert_eq!(limit(1000, 60 * SEC), (1000, Unit::Minute));
        assert_eq!(limit(10_000, 86_400 * SEC), (10_000, Unit::Day));
        assert_eq!(limit(7, 604_800 * SEC), (7, Unit::Week));
        assert_eq!(limit(100, 10 * SEC), (10, Unit::Second));
        assert_eq!(limit(1000, 90 * SEC), (666, Unit::Minute));
        assert_eq!(limit(5, Duration::from_millis(100)), (50, Unit::Second));
        assert_eq!(limit(1, 172_800 * SEC), (1, Unit::Day));
        assert_eq!(limit(u64::MAX, SEC), (u32::MAX, Unit::Second));
    }

    fn allowed(limit: u64, remaining: u64) -> Decision {
        Decision {
            allowed: true,
            limit: Some(limit),
            remaining: Some(remaining),
            retry_after_ms: Some(0),
            reason: None,
            current: None,
        }
    }

    #[test]
    fn a_response_carries_statuses_and_the_deciding_headers() {
        let r = request(
            1,
            vec![
                descriptor(&[("tenant", "acme"), ("dimension", "api-calls")], None),
                descriptor(&[("tenant", "acme"), ("dimension", "tasks")], None),
                descriptor(&[("tenant", "nobody")], None),
            ],
        );
        let d = descriptors(&r).unwrap();
        let window = |limit, per, reset_after| {
            Some(Window {
                limit,
                per,
                reset_after,
            })
        };
        let answers = AllChecked {
            allowed: false,
            checks: vec![
                Ok(Checked {
                    decision: allowed(2000, 1500),
                    window: window(1000, 60 * SEC, 30 * SEC),
                }),
                Ok(Checked {
                    decision: Decision {
                        allowed: false,
                        limit: Some(10),
                        remaining: Some(0),
                        retry_after_ms: Some(2_500),
                        reason: Some(Reason::RateLimited),
                        current: Some(10),
                    },
                    window: window(10, 3_600 * SEC, 3_600 * SEC),
                }),
                Err(EngineError::UnknownTenant("nobody".into())),
            ],
        };
        let r = response(&d, &answers, Unknown::Allow);
        assert_eq!(r.overall_code, Code::OverLimit as i32);
        let limit = |name: &str, rpu, unit: Unit| {
            Some(RateLimit {
                name: name.into(),
                requests_per_unit: rpu,
                unit: unit as i32,
            })
        };
        let secs = |seconds, nanos| Some(protobuf::Duration { seconds, nanos });
        assert_eq!(
            r.statuses,
            [
                DescriptorStatus {
                    code: Code::Ok as i32,
                    current_limit: limit("api-calls", 1000, Unit::Minute),
                    limit_remaining: 1500,
                    duration_until_reset: secs(30, 0),
                    quota: None,
                },
                DescriptorStatus {
                    code: Code::OverLimit as i32,
                    current_limit: limit("tasks", 10, Unit::Hour),
                    limit_remaining: 0,
                    duration_until_reset: secs(2, 500_000_000),
                    quota: None,
                },
                status(Code::Ok),
            ]
        );
        let headers: Vec<(&str, &str)> = r
            .response_headers_to_add
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            headers,
            [
                ("x-ratelimit-limit", "10, 10;w=3600"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "3"),
            ]
        );
        // Denying unknown descriptors marks the third OVER_LIMIT.
        let r = response(&d, &answers, Unknown::Deny);
        assert_eq!(r.statuses[2], status(Code::OverLimit));
    }

    #[test]
    fn an_allowed_response_takes_its_headers_from_the_least_remaining() {
        let statuses = [
            DescriptorStatus {
                code: Code::Ok as i32,
                current_limit: Some(RateLimit {
                    name: "api-calls".into(),
                    requests_per_unit: 1000,
                    unit: Unit::Minute as i32,
                }),
                limit_remaining: 999,
                duration_until_reset: Some(protobuf::Duration {
                    seconds: 0,
                    nanos: 60_000_000,
                }),
                quota: None,
            },
            DescriptorStatus {
                code: Code::Ok as i32,
                current_limit: Some(RateLimit {
                    name: "tasks".into(),
                    requests_per_unit: 50,
                    unit: Unit::Second as i32,
                }),
                limit_remaining: 49,
                duration_until_reset: Some(protobuf::Duration {
                    seconds: 0,
                    nanos: 20_000_000,
                }),
                quota: None,
            },
            // Unlimited: no limit, no headers from it.
            status(Code::Ok),
        ];
        let headers: Vec<String> = headers(&statuses, true)
            .into_iter()
            .map(|h| format!("{}: {}", h.key, h.value))
            .collect();
        assert_eq!(
            headers,
            [
                "x-ratelimit-limit: 50, 50;w=1",
                "x-ratelimit-remaining: 49",
                "x-ratelimit-reset: 1"
            ]
        );
        assert!(super::headers(&[status(Code::Ok)], true).is_empty());
    }
}
