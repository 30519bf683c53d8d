//! Differential test: the same API operations against a fresh kube-test and,
//! when `LANDLORD_E2E=1` and `KUBECONFIG` are set, against a real API server.
//! Each step's outcome (status codes, reasons, messages, object fields) is
//! normalised (uids, resourceVersions, times, generated suffixes, the run's
//! unique id) and compared with the other server's, step by step.
//!
//! Without a real server the kube-test outcomes are compared with
//! `tests/differential/expected.json`, the outcomes recorded from a real
//! v1.36 server (`DIFFERENTIAL_RECORD=1` rewrites it during an E2E run).
mod differential {
    pub mod normalise;
    pub mod steps;
    pub mod target;
}
use differential::{steps, target::Target};
use serde_json::Value;
use std::path::PathBuf;

fn expected_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/differential/expected.json")
}

fn real_kubeconfig() -> Option<PathBuf> {
    if std::env::var("LANDLORD_E2E").ok().as_deref() != Some("1") {
        return None;
    }
    std::env::var_os("KUBECONFIG").map(PathBuf::from)
}

/// A short id unique to this run, so that names never collide on a shared
/// cluster; it is normalised to `<id>` in every outcome.
fn run_id() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        ^ u128::from(std::process::id()) << 40;
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = n;
    (0..6)
        .map(|_| {
            let c = alphabet[(x % 36) as usize] as char;
            x /= 36;
            c
        })
        .collect()
}

fn mismatches(left: &[(String, Value)], right: &[(String, Value)], rname: &str) -> Vec<String> {
    let mut out = vec![];
    for (step, l) in left {
        match right.iter().find(|(s, _)| s == step) {
            None => out.push(format!("step {step}: no outcome from {rname}")),
            Some((_, r)) if r != l => {
                let mut leaves = vec![];
                leaf_diffs(l, r, "", &mut leaves);
                out.push(format!(
                    "step {step} differs at:\n    {}\n  kube-test: {}\n  {rname}: {}",
                    leaves.join("\n    "),
                    serde_json::to_string(l).unwrap(),
                    serde_json::to_string(r).unwrap()
                ))
            }
            Some(_) => {}
        }
    }
    out
}

/// The paths where two outcomes differ, with both values.
fn leaf_diffs(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                leaf_diffs(l, r, &format!("{path}/{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                leaf_diffs(l, r, &format!("{path}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: kube-test {a} / other {b}")),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_test_answers_like_a_real_api_server() {
    if !std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        panic!("kubectl is required by the differential test and is not on PATH");
    }
    let id = run_id();
    let fake = Target::kube_test(&id).await;
    let fake_outcomes = steps::run_all(&fake).await;
    fake.cleanup().await;

    match real_kubeconfig() {
        Some(kc) => {
            let real = Target::real(&id, &kc).await;
            let real_outcomes = steps::run_all(&real).await;
            real.cleanup().await;
            if std::env::var("DIFFERENTIAL_RECORD").ok().as_deref() == Some("1") {
                let map: serde_json::Map<String, Value> = real_outcomes.iter().cloned().collect();
                std::fs::write(
                    expected_path(),
                    serde_json::to_string_pretty(&Value::Object(map)).unwrap() + "\n",
                )
                .unwrap();
            }
            let diffs = mismatches(&fake_outcomes, &real_outcomes, "real server");
            println!(
                "compared {} steps between kube-test and the real server in {}",
                fake_outcomes.len(),
                kc.display()
            );
            assert!(diffs.is_empty(), "{}", diffs.join("\n"));
        }
        None => {
            let text = std::fs::read_to_string(expected_path()).expect("recorded expectations");
            let recorded: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
            let recorded: Vec<(String, Value)> = recorded.into_iter().collect();
            println!(
                "LANDLORD_E2E=1 and KUBECONFIG are not both set: compared kube-test against the \
                 outcomes recorded from a real server only ({} steps)",
                fake_outcomes.len()
            );
            let diffs = mismatches(&fake_outcomes, &recorded, "recorded real server");
            assert!(diffs.is_empty(), "{}", diffs.join("\n"));
        }
    }
}
