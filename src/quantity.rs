//! Kubernetes quantities as integers, so quotas can be added, split and compared exactly.
//!
//! CPU is counted in millicores; everything else (pods, bytes, object counts) in whole units,
//! which is the finest grain the API server's quota admission counts them in. Arithmetic is
//! exact (`rust_decimal`), never floating point, as in the API server.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Why a quantity could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{resource}: `{value}` is not a quantity Landlord can use ({reason})")]
pub struct QuantityError {
    pub resource: String,
    pub value: String,
    pub reason: String,
}

/// Whether `resource` is counted in millicores rather than whole units.
pub fn is_milli(resource: &str) -> bool {
    resource == "cpu" || resource.ends_with(".cpu")
}

/// The quantity as an integer in the resource's unit (millicores for CPU, whole units otherwise).
/// Fractions of a whole unit round up, as the API server rounds quantities.
pub fn parse(resource: &str, quantity: &Quantity) -> Result<i128, QuantityError> {
    let error = |reason: &str| QuantityError {
        resource: resource.to_string(),
        value: quantity.0.clone(),
        reason: reason.to_string(),
    };
    let milli = parse_milli(&quantity.0).ok_or_else(|| error("not a Kubernetes quantity"))?;
    if milli < 0 {
        return Err(error("negative"));
    }
    Ok(if is_milli(resource) {
        milli
    } else {
        (milli + 999) / 1000
    })
}

/// Any quantity in thousandths of its unit, rounded up; `None` if it is not a quantity.
pub fn parse_milli(text: &str) -> Option<i128> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: Decimal = number.parse().ok()?;
    let pow = |base: i64, exp: u32| {
        (0..exp).try_fold(Decimal::ONE, |acc, _| acc.checked_mul(Decimal::from(base)))
    };
    let factor = match suffix {
        "" => Decimal::ONE,
        "m" => Decimal::new(1, 3),
        "u" => Decimal::new(1, 6),
        "n" => Decimal::new(1, 9),
        "k" => pow(10, 3)?,
        "M" => pow(10, 6)?,
        "G" => pow(10, 9)?,
        "T" => pow(10, 12)?,
        "P" => pow(10, 15)?,
        "E" => pow(10, 18)?,
        "Ki" => pow(2, 10)?,
        "Mi" => pow(2, 20)?,
        "Gi" => pow(2, 30)?,
        "Ti" => pow(2, 40)?,
        "Pi" => pow(2, 50)?,
        "Ei" => pow(2, 60)?,
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().ok()?;
            if e >= 0 {
                pow(10, e as u32)?
            } else {
                Decimal::ONE.checked_div(pow(10, e.unsigned_abs())?)?
            }
        }
        _ => return None,
    };
    let milli = number
        .checked_mul(factor)?
        .checked_mul(Decimal::from(1000))?;
    milli.ceil().to_i128()
}

/// Format an amount back into the shortest exact quantity a person reads easily.
pub fn format(resource: &str, amount: i128) -> Quantity {
    if is_milli(resource) {
        return Quantity(if amount % 1000 == 0 {
            (amount / 1000).to_string()
        } else {
            format!("{amount}m")
        });
    }
    const BINARY: [(&str, i128); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    let is_bytes = resource.contains("memory") || resource.contains("storage");
    for (suffix, size) in BINARY.into_iter().filter(|_| is_bytes) {
        if amount != 0 && amount % size == 0 && amount >= size {
            return Quantity(format!("{}{suffix}", amount / size));
        }
    }
    Quantity(amount.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn the_smallest_exponent_is_refused_not_a_panic() {
        assert_eq!(parse_milli("1e-2147483648"), None);
        assert_eq!(parse_milli("1e2147483647"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Any text: a quantity, or an error that names the resource and the value.
        #[test]
        fn any_text_is_a_quantity_or_says_why(text in "[-+0-9.eEkKMGTPimun]{0,24}") {
            if let Err(e) = parse("requests.memory", &q(&text)) {
                let said = e.to_string();
                proptest::prop_assert!(said.starts_with(&format!("requests.memory: `{text}` is not a quantity Landlord can use (")), "{}", said);
            }
        }

        /// What Landlord writes, it reads back as the same amount.
        #[test]
        fn formatted_amounts_parse_back(amount in 0i128..(1 << 62), resource in 0usize..3) {
            let resource = ["requests.cpu", "requests.memory", "pods"][resource];
            proptest::prop_assert_eq!(parse(resource, &format(resource, amount)), Ok(amount));
        }
    }

    #[test]
    fn cpu_is_counted_in_millicores() {
        assert_eq!(parse("requests.cpu", &q("100m")), Ok(100));
        assert_eq!(parse("limits.cpu", &q("2")), Ok(2000));
        assert_eq!(parse("cpu", &q("1.5")), Ok(1500));
    }

    #[test]
    fn other_resources_are_whole_units_rounded_up() {
        assert_eq!(parse("pods", &q("10")), Ok(10));
        assert_eq!(parse("requests.memory", &q("1Gi")), Ok(1 << 30));
        assert_eq!(parse("requests.memory", &q("1G")), Ok(1_000_000_000));
        assert_eq!(parse("requests.storage", &q("1e3")), Ok(1000));
        assert_eq!(parse("pods", &q("2500m")), Ok(3));
        assert_eq!(parse("requests.memory", &q("1.5Gi")), Ok(3 << 29));
        assert_eq!(parse("requests.cpu", &q("1e-3")), Ok(1));
        assert_eq!(parse("requests.cpu", &q("2k")), Ok(2_000_000));
    }

    #[test]
    fn bad_quantities_are_errors_not_panics() {
        assert!(parse("pods", &q("lots")).is_err());
        assert!(parse("pods", &q("1.5.3")).is_err());
        assert!(parse("pods", &q("5X")).is_err());
        assert_eq!(parse("pods", &q("-1")).unwrap_err().reason, "negative");
    }

    #[test]
    fn formatting_is_exact_and_readable() {
        assert_eq!(format("requests.cpu", 2000), q("2"));
        assert_eq!(format("requests.cpu", 2500), q("2500m"));
        assert_eq!(format("requests.memory", 16 << 30), q("16Gi"));
        assert_eq!(format("requests.memory", 3 << 29), q("1536Mi"));
        assert_eq!(format("pods", 3), q("3"));
        assert_eq!(format("pods", 0), q("0"));
        assert_eq!(format("pods", 1024), q("1024"));
        assert_eq!(format("requests.storage", 1000), q("1000"));
    }
}
