//! Durations as Kubernetes and Go write them (`1m30s`, `1.5h`, `250ms`): one parser for the
//! CRD's `per` fields and the command line's flags, so both accept the same text.

use std::time::Duration;

/// A Go-style duration: `1s`, `1m30s`, `1.5h`, `250ms`.
pub fn parse(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        // Checked: `99999999999999999999h` is text, not a reason to panic.
        total = total.checked_add(Duration::try_from_secs_f64(number * seconds).ok()?)?;
        rest = &rest[unit_end..];
    }
    Some(total)
}

/// [`parse`] for clap: a flag value, or an error that shows the expected form.
pub fn flag(text: &str) -> Result<Duration, String> {
    parse(text).ok_or_else(|| format!("`{text}` is not a duration like 30s, 5m or 1m30s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations() {
        assert_eq!(parse("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("24h"), Some(Duration::from_secs(86400)));
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("5d"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("m"), None);
        assert_eq!(parse("30"), None);
    }

    #[test]
    fn durations_too_long_to_hold_are_refused() {
        assert_eq!(parse("99999999999999999999999h"), None);
        assert_eq!(parse("9223372036854775807s9223372036854775807s"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Any text: an answer, never a panic; a duration's own rendering parses back.
        #[test]
        fn any_text_is_a_duration_or_none(text in "[0-9.a-zµ]{0,24}") {
            let _ = parse(&text);
        }

        #[test]
        fn whole_units_parse_exactly(n in 0u64..1_000_000, unit in 0usize..5) {
            let (suffix, nanos) = [("ns", 1), ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)][unit];
            let parsed = parse(&format!("{n}{suffix}"));
            proptest::prop_assert_eq!(parsed.map(|d| d.as_nanos()), Some(u128::from(n) * nanos));
        }
    }

    #[test]
    fn flags_take_the_same_text_as_the_crd() {
        assert_eq!(flag("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(flag("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(
            flag("soon"),
            Err("`soon` is not a duration like 30s, 5m or 1m30s".to_string())
        );
    }
}
