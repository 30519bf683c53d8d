//! Turning usage into cost: a pure function over exact decimals.
//!
//! Prices are decimal strings (`"0.002"`) parsed into `rust_decimal::Decimal` (96-bit
//! integer mantissa), never floats. A line costs `units * price / unit`, prorated (a partial
//! step costs its share), rounded half away from zero to [`COST_DECIMALS`] places; the total
//! is the sum of the rounded lines, so an invoice always adds up.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Decimal places of every amount this module returns.
pub const COST_DECIMALS: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// ISO 4217 code, e.g. `EUR`; carried through, never converted.
    pub currency: String,
    pub items: Vec<PriceItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceItem {
    pub dimension: String,
    /// Units per price step: `unit: 1000, price: "0.002"` is 0.002 per thousand.
    pub unit: u64,
    /// Price of one step as a non-negative decimal string.
    pub price: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub currency: String,
    /// Sum of the lines, with exactly [`COST_DECIMALS`] decimals.
    pub total: String,
    /// One line per priced dimension, in the order of the pricing items.
    pub lines: Vec<CostLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostLine {
    pub dimension: String,
    pub units: u64,
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("price of {dimension:?} must be a non-negative decimal like \"0.002\", got {price:?}")]
    BadPrice { dimension: String, price: String },
    #[error("unit of {0:?} must be at least 1")]
    ZeroUnit(String),
    #[error("dimension {0:?} is priced twice")]
    Duplicate(String),
    #[error("cost of {0:?} is too large to represent")]
    Overflow(String),
}

fn parse_price(item: &PriceItem) -> Result<Decimal, PricingError> {
    let bad = || PricingError::BadPrice {
        dimension: item.dimension.clone(),
        price: item.price.clone(),
    };
    let p = &item.price;
    let (whole, frac) = p.split_once('.').unwrap_or((p, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    Decimal::from_str_exact(p).map_err(|_| bad())
}

/// Checks every price parses; for validating a plan before it is used.
pub fn validate(pricing: &Pricing) -> Result<(), PricingError> {
    cost(pricing, &BTreeMap::new()).map(|_| ())
}

/// The cost of `totals` (units per dimension) under `pricing`. Dimensions without a price
/// cost nothing and get no line; priced dimensions without usage get a zero line.
pub fn cost(pricing: &Pricing, totals: &BTreeMap<String, u64>) -> Result<Cost, PricingError> {
    let mut seen = HashSet::new();
    let mut total = Decimal::ZERO;
    let mut lines = Vec::with_capacity(pricing.items.len());
    for item in &pricing.items {
        if !seen.insert(item.dimension.as_str()) {
            return Err(PricingError::Duplicate(item.dimension.clone()));
        }
        if item.unit == 0 {
            return Err(PricingError::ZeroUnit(item.dimension.clone()));
        }
        let price = parse_price(item)?;
        let units = totals.get(&item.dimension).copied().unwrap_or(0);
        let overflow = || PricingError::Overflow(item.dimension.clone());
        let amount = Decimal::from(units)
            .checked_mul(price)
            .and_then(|a| a.checked_div(Decimal::from(item.unit)))
            .ok_or_else(overflow)?
            .round_dp_with_strategy(COST_DECIMALS, RoundingStrategy::MidpointAwayFromZero);
        total = total.checked_add(amount).ok_or_else(overflow)?;
        lines.push(CostLine {
            dimension: item.dimension.clone(),
            units,
            amount: fixed(amount),
        });
    }
    Ok(Cost {
        currency: pricing.currency.clone(),
        total: fixed(total),
        lines,
    })
}

fn fixed(mut d: Decimal) -> String {
    d.rescale(COST_DECIMALS);
    d.to_string()
}

/// Usage totals of a [`Usage`](super::Usage), ready for [`cost`].
pub fn totals(usage: &super::Usage) -> BTreeMap<String, u64> {
    usage
        .dimensions
        .iter()
        .map(|(d, u)| (d.clone(), u.total))
        .collect()
}

impl FromStr for PriceItem {
    type Err = PricingError;

    /// `dimension=price/unit`, e.g. `llm-tokens=0.002/1000`; for command lines and tests.
    fn from_str(s: &str) -> Result<Self, PricingError> {
        let bad = || PricingError::BadPrice {
            dimension: s.to_owned(),
            price: s.to_owned(),
        };
        let (dimension, rest) = s.split_once('=').ok_or_else(bad)?;
        let (price, unit) = rest.split_once('/').unwrap_or((rest, "1"));
        let item = PriceItem {
            dimension: dimension.to_owned(),
            unit: unit.parse().map_err(|_| bad())?,
            price: price.to_owned(),
        };
        parse_price(&item)?;
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing(items: &[&str]) -> Pricing {
        Pricing {
            currency: "EUR".into(),
            items: items.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn totals(t: &[(&str, u64)]) -> BTreeMap<String, u64> {
        t.iter().map(|(d, u)| (d.to_string(), *u)).collect()
    }

    #[test]
    fn exact_decimal_costs() {
        let p = pricing(&[
            "llm-tokens=0.002/1000",
            "requests=0.0000001",
            "storage=0.1/3",
        ]);
        let c = cost(
            &p,
            &totals(&[("llm-tokens", 1_234_567), ("requests", 3), ("other", 99)]),
        )
        .unwrap();
        let lines: Vec<_> = c
            .lines
            .iter()
            .map(|l| (l.dimension.as_str(), l.units, l.amount.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                // 1,234,567 * 0.002 / 1000 = 2.469134
                ("llm-tokens", 1_234_567, "2.469134"),
                // 3 * 0.0000001 = 0.0000003, half away from zero at 6 places
                ("requests", 3, "0.000000"),
                ("storage", 0, "0.000000"),
            ]
        );
        assert_eq!(c.total, "2.469134");
        assert_eq!(c.currency, "EUR");
    }

    #[test]
    fn floats_would_get_these_wrong() {
        // 0.1 + 0.2 in floats is 0.30000000000000004.
        let p = pricing(&["a=0.1", "b=0.2"]);
        let c = cost(&p, &totals(&[("a", 1), ("b", 1)])).unwrap();
        assert_eq!(c.total, "0.300000");
        // Half a micro-unit rounds away from zero: 5 * 0.0000001 = 0.0000005 -> 0.000001.
        let c = cost(&pricing(&["a=0.0000001"]), &totals(&[("a", 5)])).unwrap();
        assert_eq!(c.total, "0.000001");
        // A third of a cent per unit, over 10 units: 0.033333... -> 0.033333.
        let c = cost(&pricing(&["a=0.01/3"]), &totals(&[("a", 10)])).unwrap();
        assert_eq!(c.total, "0.033333");
        // Large usage stays exact: 2^53 units at 1.5 per million.
        let c = cost(&pricing(&["a=1.5/1000000"]), &totals(&[("a", 1 << 53)])).unwrap();
        assert_eq!(c.total, "13510798882.111488");
    }

    #[test]
    fn rejects_bad_prices() {
        for bad in ["-1", "1e3", "abc", ".5", "5.", "1.2.3", ""] {
            let p = Pricing {
                currency: "EUR".into(),
                items: vec![PriceItem {
                    dimension: "a".into(),
                    unit: 1,
                    price: bad.into(),
                }],
            };
            assert!(
                matches!(validate(&p), Err(PricingError::BadPrice { .. })),
                "{bad}"
            );
        }
        let mut p = pricing(&["a=1"]);
        p.items[0].unit = 0;
        assert_eq!(validate(&p), Err(PricingError::ZeroUnit("a".into())));
        let p = pricing(&["a=1", "a=2"]);
        assert_eq!(validate(&p), Err(PricingError::Duplicate("a".into())));
    }
}
