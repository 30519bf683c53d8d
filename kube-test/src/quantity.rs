//! Kubernetes resource quantities ("100m", "1Gi", "2", "1e3").
//!
//! Values are held exactly as an integer number of nano-units (1e-9), which
//! covers every quantity Kubernetes can express up to exabytes.
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    BinarySI,
    DecimalSI,
    DecimalExponent,
}

#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    /// Value in units of 1e-9.
    pub nanos: i128,
    pub format: Format,
}

const NANO: i128 = 1_000_000_000;

impl PartialEq for Quantity {
    fn eq(&self, o: &Self) -> bool {
        self.nanos == o.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Quantity {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.nanos.cmp(&o.nanos)
    }
}

impl Quantity {
    pub fn zero() -> Self {
        Quantity {
            nanos: 0,
            format: Format::DecimalSI,
        }
    }
    pub fn from_int(v: i64) -> Self {
        Quantity {
            nanos: v as i128 * NANO,
            format: Format::DecimalSI,
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let err = || {
            format!(
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {s:?}"
            )
        };
        if s.is_empty() {
            return Err(err());
        }
        let (sign, rest) = match s.as_bytes()[0] {
            b'-' => (-1i128, &s[1..]),
            b'+' => (1, &s[1..]),
            _ => (1, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, suffix) = rest.split_at(num_end);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err());
        }
        let (int_part, frac_part) = match num.split_once('.') {
            Some((a, b)) => (a, b),
            None => (num, ""),
        };
        // mantissa as integer with `frac_part.len()` decimal digits
        let digits = format!("{int_part}{frac_part}");
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| err())?
        };
        let mut dec_exp: i32 = -(frac_part.len() as i32);
        let mut bin_mult: i128 = 1;
        let format = match suffix {
            "" => Format::DecimalSI,
            "n" => {
                dec_exp -= 9;
                Format::DecimalSI
            }
            "u" => {
                dec_exp -= 6;
                Format::DecimalSI
            }
            "m" => {
                dec_exp -= 3;
                Format::DecimalSI
            }
            "k" => {
                dec_exp += 3;
                Format::DecimalSI
            }
            "M" => {
                dec_exp += 6;
                Format::DecimalSI
            }
            "G" => {
                dec_exp += 9;
                Format::DecimalSI
            }
            "T" => {
                dec_exp += 12;
                Format::DecimalSI
            }
            "P" => {
                dec_exp += 15;
                Format::DecimalSI
            }
            "E" => {
                dec_exp += 18;
                Format::DecimalSI
            }
            "Ki" => {
                bin_mult = 1 << 10;
                Format::BinarySI
            }
            "Mi" => {
                bin_mult = 1 << 20;
                Format::BinarySI
            }
            "Gi" => {
                bin_mult = 1 << 30;
                Format::BinarySI
            }
            "Ti" => {
                bin_mult = 1 << 40;
                Format::BinarySI
            }
            "Pi" => {
                bin_mult = 1 << 50;
                Format::BinarySI
            }
            "Ei" => {
                bin_mult = 1 << 60;
                Format::BinarySI
            }
            other if other.starts_with(['e', 'E']) => {
                let e: i32 = other[1..].parse().map_err(|_| err())?;
                if !(-30..=30).contains(&e) {
                    return Err(err());
                }
                dec_exp += e;
                Format::DecimalExponent
            }
            _ => return Err(err()),
        };
        // nanos = mantissa * 10^(dec_exp + 9) * bin_mult, rounding up fractions of a nano
        let e = dec_exp + 9;
        let mut v = mantissa.checked_mul(bin_mult).ok_or_else(err)?;
        if e >= 0 {
            v = v
                .checked_mul(10i128.checked_pow(e as u32).ok_or_else(err)?)
                .ok_or_else(err)?;
        } else {
            let d = 10i128.checked_pow((-e) as u32).ok_or_else(err)?;
            v = (v + d - 1) / d;
        }
        Ok(Quantity {
            nanos: sign * v,
            format,
        })
    }

    pub fn add(&self, o: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos + o.nanos,
            format: if self.nanos == 0 {
                o.format
            } else {
                self.format
            },
        }
    }
    pub fn sub(&self, o: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos - o.nanos,
            format: self.format,
        }
    }
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }
    /// Value rounded up to whole units.
    pub fn value(&self) -> i128 {
        let q = self.nanos.div_euclid(NANO);
        if self.nanos.rem_euclid(NANO) != 0 {
            q + 1
        } else {
            q
        }
    }
    /// Value rounded up to milli-units.
    pub fn milli_value(&self) -> i128 {
        let q = self.nanos.div_euclid(1_000_000);
        if self.nanos.rem_euclid(1_000_000) != 0 {
            q + 1
        } else {
            q
        }
    }
}

impl fmt::Display for Quantity {
    /// Canonical form, as the apiserver serialises quantities.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return write!(f, "0");
        }
        let neg = self.nanos < 0;
        let abs = self.nanos.abs();
        let sign = if neg { "-" } else { "" };
        if self.format == Format::BinarySI && abs % NANO == 0 {
            let units = abs / NANO;
            let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            let mut i = 0;
            let mut u = units;
            while i + 1 < suffixes.len() && u % 1024 == 0 {
                u /= 1024;
                i += 1;
            }
            // Kubernetes only uses binary suffixes when they give an exact mantissa;
            // tiny values (< 1Ki) are written as plain decimals.
            return write!(f, "{sign}{u}{}", suffixes[i]);
        }
        // decimal SI: find the largest exponent (multiple of 3) giving an integer mantissa
        let suffixes: [(u32, &str); 10] = [
            (27, "E"),
            (24, "P"),
            (21, "T"),
            (18, "G"),
            (15, "M"),
            (12, "k"),
            (9, ""),
            (6, "m"),
            (3, "u"),
            (0, "n"),
        ];
        for (exp, suf) in suffixes {
            let d = 10i128.pow(exp);
            if abs % d == 0 {
                if self.format == Format::DecimalExponent && exp >= 9 {
                    let e = exp as i32 - 9;
                    return if e == 0 {
                        write!(f, "{sign}{}", abs / d)
                    } else {
                        write!(f, "{sign}{}e{e}", abs / d)
                    };
                }
                return write!(f, "{sign}{}{suf}", abs / d);
            }
        }
        write!(f, "{sign}{abs}n")
    }
}

/// Parse a JSON value (string or number) as a quantity.
pub fn from_json(v: &serde_json::Value) -> Option<Quantity> {
    match v {
        serde_json::Value::String(s) => Quantity::parse(s).ok(),
        serde_json::Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }
    #[test]
    fn parse_and_format() {
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("2").value(), 2);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("0.1").to_string(), "100m");
        assert_eq!(q("1000m").to_string(), "1");
        assert_eq!(q("1024Mi").to_string(), "1Gi");
        assert_eq!(q("1500Mi").to_string(), "1500Mi");
        assert_eq!(q("1k").to_string(), "1k");
        assert_eq!(q("1e3").to_string(), "1e3");
        assert_eq!(q("2000").to_string(), "2k");
        assert_eq!(q("250m").add(&q("250m")).to_string(), "500m");
        assert_eq!(q("1Gi").add(&q("512Mi")).to_string(), "1536Mi");
        assert!(q("1") > q("999m"));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert!(Quantity::parse("abc").is_err());
        assert!(Quantity::parse("1.2.3").is_err());
        assert!(Quantity::parse("1X").is_err());
        assert_eq!(q("0").to_string(), "0");
        assert_eq!(q("-1").to_string(), "-1");
    }
}
