//! Splitting a tenant-wide limit into per-namespace ResourceQuota values without races.
//!
//! The API server's quota admission is atomic per namespace, not across namespaces. So instead
//! of reacting when a tenant's total is reached (Capsule's approach, which races: issues 14 and
//! 643), the tenant's limit is partitioned: the namespaces' `hard` values always sum to at most
//! the tenant limit, and the API server then enforces the tenant limit by itself. Headroom a
//! namespace does not use is handed to the others on every reconcile, and the apply step lowers
//! quotas before it raises any, so the sum holds at every instant too.

/// One namespace's view of one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// What the namespace uses now (its ResourceQuota `status.used`).
    pub used: i128,
    /// The per-namespace ceiling (`namespaceHard` or the namespace's own `hard`), if any.
    pub cap: Option<i128>,
}

/// The `hard` value of each namespace for a tenant-wide `limit`, in the order given.
///
/// - Every namespace first keeps what it uses (up to its cap), so nothing running is squeezed.
/// - What is left is handed out in equal parts (water-filling, respecting caps), remainders to
///   the earliest namespaces, so a namespace that used up its share gets more as soon as the
///   others leave some unused.
/// - If the namespaces together already use more than the limit (a plan was lowered), the limit
///   is divided in proportion to use: every namespace ends below its use and nothing new starts
///   anywhere until the tenant is back under its limit.
pub fn partition(limit: i128, shares: &[Share]) -> Vec<i128> {
    let limit = limit.max(0);
    let base: Vec<i128> = shares
        .iter()
        .map(|s| s.cap.map_or(s.used, |c| s.used.min(c)).max(0))
        .collect();
    let needed: i128 = base.iter().sum();
    if needed > limit {
        return proportional(limit, &base);
    }
    let mut hard = base;
    let mut headroom = limit - needed;
    loop {
        let open: Vec<usize> = (0..shares.len())
            .filter(|&i| shares[i].cap.is_none_or(|c| hard[i] < c))
            .collect();
        if open.is_empty() || headroom == 0 {
            return hard;
        }
        let each = headroom / open.len() as i128;
        let mut extra = headroom % open.len() as i128;
        for &i in &open {
            let mut give = each;
            if extra > 0 {
                give += 1;
                extra -= 1;
            }
            if let Some(cap) = shares[i].cap {
                give = give.min(cap - hard[i]);
            }
            hard[i] += give;
            headroom -= give;
        }
    }
}

/// `limit` divided in proportion to `weights`, rounding down, the units left over going to the
/// largest fractional parts (the largest-remainder method).
fn proportional(limit: i128, weights: &[i128]) -> Vec<i128> {
    let total: i128 = weights.iter().sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let mut out: Vec<i128> = weights.iter().map(|w| w * limit / total).collect();
    let mut rest = limit - out.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weights[i] * limit % total));
    for i in order {
        if rest == 0 {
            break;
        }
        out[i] += 1;
        rest -= 1;
    }
    out
}

/// For each namespace, the value to write first so that no step of the update ever lets the
/// sum exceed the limit: the lower of the current and the target value. Raises wait for the
/// second step, after every lowering has landed.
pub fn lower_first(current: Option<i128>, target: i128) -> i128 {
    current.map_or(target, |c| c.min(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(used: i128) -> Share {
        Share { used, cap: None }
    }

    #[test]
    fn an_idle_tenant_is_split_evenly_with_remainders_first() {
        assert_eq!(partition(10, &[free(0), free(0), free(0)]), vec![4, 3, 3]);
    }

    #[test]
    fn headroom_goes_to_everyone_on_top_of_what_they_use() {
        // 4 used of 10: 6 left, 2 each.
        assert_eq!(partition(10, &[free(4), free(0), free(0)]), vec![6, 2, 2]);
    }

    #[test]
    fn a_namespace_that_used_its_share_gets_the_others_unused_headroom() {
        // The first namespace filled 4; the others use nothing: it can grow to 6 now, and
        // after it does, to 7 or more on the next round.
        let round1 = partition(10, &[free(4), free(0), free(0)]);
        assert_eq!(round1[0], 6);
        let round2 = partition(10, &[free(6), free(0), free(0)]);
        assert_eq!(round2, vec![8, 1, 1]);
    }

    #[test]
    fn caps_are_respected_and_their_leftover_goes_elsewhere() {
        let shares = [
            Share {
                used: 0,
                cap: Some(1),
            },
            free(0),
            free(0),
        ];
        assert_eq!(partition(10, &shares), vec![1, 5, 4]);
    }

    #[test]
    fn the_sum_never_exceeds_the_limit() {
        for limit in 0..40 {
            for used in [[0, 0, 0], [5, 0, 3], [10, 10, 10], [1, 2, 3]] {
                let shares: Vec<Share> = used.iter().map(|&u| free(u)).collect();
                let hard = partition(limit, &shares);
                assert!(
                    hard.iter().sum::<i128>() <= limit,
                    "limit {limit}, used {used:?}: {hard:?}"
                );
            }
        }
    }

    #[test]
    fn a_namespace_already_over_its_share_keeps_what_it_uses() {
        // 7 used in one namespace of a 10 limit: the others split the 3 left.
        assert_eq!(partition(10, &[free(7), free(0), free(0)]), vec![8, 1, 1]);
    }

    #[test]
    fn a_plan_lowered_below_current_usage_divides_the_limit_by_use() {
        // 16 used against a new limit of 10: every namespace ends below its use.
        let hard = partition(10, &[free(8), free(6), free(2)]);
        assert_eq!(hard, vec![5, 4, 1]);
        assert_eq!(hard.iter().sum::<i128>(), 10);
        assert!(hard.iter().zip([8, 6, 2]).all(|(h, u)| *h <= u));
    }

    #[test]
    fn usage_counts_only_up_to_the_cap() {
        let shares = [
            Share {
                used: 9,
                cap: Some(5),
            },
            free(0),
        ];
        assert_eq!(partition(10, &shares), vec![5, 5]);
    }

    #[test]
    fn zero_limit_gives_zero_everywhere() {
        assert_eq!(partition(0, &[free(3), free(0)]), vec![0, 0]);
    }

    #[test]
    fn lowering_is_written_before_raising() {
        assert_eq!(lower_first(Some(6), 4), 4);
        assert_eq!(lower_first(Some(2), 5), 2);
        assert_eq!(lower_first(None, 5), 5);
    }
}
