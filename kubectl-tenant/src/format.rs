//! Text shapes shared by every command: kubectl-style tables, ages, utilization bars and the
//! object name kubectl prints (`tenant.landlord.dev/acme`). Pure, so each is unit-tested.

use comfy_table::{Table, presets};

/// How kubectl writes a missing value in a table.
pub const NONE: &str = "<none>";

/// A table as `kubectl get` prints it: upper-case headers, left-aligned columns three spaces
/// apart, no borders, no trailing blanks.
pub fn table<R, C>(headers: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<String>,
{
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(headers.to_vec());
    for row in rows {
        t.add_row(row.into_iter().map(Into::into).collect::<Vec<String>>());
    }
    let last = headers.len().saturating_sub(1);
    for (i, column) in t.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { 3 }));
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// [`table`] indented by two spaces, for a section of `kubectl tenant get`.
pub fn indented_table<R, C>(headers: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<String>,
{
    table(headers, rows)
        .lines()
        .map(|line| format!("  {line}\n"))
        .collect()
}

/// An age as kubectl prints it (`45s`, `3m12s`, `5h`, `2d4h`, `400d`, `3y20d`): the rules of
/// apimachinery's `HumanDuration`, so the column reads the same as `kubectl get`'s.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        match s % 60 {
            0 => format!("{m}m"),
            r => format!("{m}m{r}s"),
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            r => format!("{h}h{r}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        match h % 24 {
            0 => format!("{d}d"),
            r => format!("{d}d{r}h"),
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        match d % 365 {
            0 => format!("{}y", d / 365),
            r => format!("{}y{r}d", d / 365),
        }
    } else {
        format!("{}y", d / 365)
    }
}

/// The age of an object created at `created`, seen at `now`.
pub fn age_since(
    created: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    now: jiff::Timestamp,
) -> String {
    match created {
        Some(t) => age(now.as_second() - t.0.as_second()),
        None => NONE.to_string(),
    }
}

/// `[######--------------]`: a utilization as a 20-character bar, full at 100 % and beyond.
pub fn bar(percent: u32) -> String {
    const WIDTH: usize = 20;
    let filled = ((percent.min(100) as usize) * WIDTH + 50) / 100;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(WIDTH - filled))
}

/// `tenant.landlord.dev/acme`: the name kubectl prints for a Tenant (`-o name`, messages).
pub fn tenant_ref(name: &str) -> String {
    format!("tenant.landlord.dev/{name}")
}

/// An optional value, or kubectl's `<none>`.
pub fn or_none<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| NONE.to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_look_like_kubectl_get() {
        let out = table(
            &["NAME", "PHASE", "AGE"],
            [
                vec!["acme", "Active", "5m"],
                vec!["globex-long", "Suspended", "12d"],
            ],
        );
        assert_eq!(
            out,
            "NAME          PHASE       AGE\n\
             acme          Active      5m\n\
             globex-long   Suspended   12d\n"
        );
        assert_eq!(
            indented_table(&["A", "B"], [vec!["x", "y"]]),
            "  A   B\n  x   y\n"
        );
    }

    #[test]
    fn ages_follow_kubectl() {
        for (seconds, text) in [
            (-3, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 60, "5h1m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 4 * 3600, "2d4h"),
            (8 * 86400, "8d"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400 + 20 * 86400, "3y20d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(age(seconds), text, "{seconds}");
        }
    }

    #[test]
    fn bars_round_to_the_nearest_step_and_stop_at_full() {
        assert_eq!(bar(0), "[--------------------]");
        assert_eq!(bar(30), "[######--------------]");
        assert_eq!(bar(97), "[###################-]");
        assert_eq!(bar(100), "[####################]");
        assert_eq!(bar(250), "[####################]");
    }
}
