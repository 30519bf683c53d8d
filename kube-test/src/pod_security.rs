//! Pod Security admission: the `baseline` and `restricted` levels of the Pod Security
//! Standards, enforced on pods created in a namespace labelled
//! `pod-security.kubernetes.io/enforce`. Written from the published standards; the error
//! has the real plug-in's shape (`violates PodSecurity "restricted:latest": check (detail),
//! …`) and each check's name, so a test can assert the same words on both servers.
//!
//! Covered: host namespaces, privileged containers, capabilities, hostPath volumes, host
//! ports, /proc mount and seccomp (`baseline`); volume types, privilege escalation,
//! running as non-root, `runAsUser=0`, the seccomp profile and dropping ALL capabilities
//! (`restricted`). Not covered: AppArmor, SELinux options, sysctls and Windows host
//! processes, and the `audit`/`warn` modes (nothing to report to).

use serde_json::Value;

/// The level a namespace enforces, from its labels (`None`: privileged or unlabelled).
pub fn enforced_level(namespace: &Value) -> Option<&'static str> {
    let label = namespace
        .pointer("/metadata/labels")?
        .get("pod-security.kubernetes.io/enforce")?
        .as_str()?;
    match label {
        "baseline" => Some("baseline"),
        "restricted" => Some("restricted"),
        _ => None,
    }
}

/// The refusal's message for `pod` at `level`, or `None` when the pod passes.
pub fn check(level: &str, pod: &Value) -> Option<String> {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let containers = containers(spec);
    let mut failures = Vec::new();
    let restricted = level == "restricted";
    // The real plug-in's order: the baseline checks, then the restricted ones, each part by
    // check name; at `restricted` its own capabilities, volumes and seccomp checks replace
    // the baseline ones.
    if !restricted {
        baseline_capabilities(&containers, &mut failures);
    }
    host_namespaces(spec, &mut failures);
    if !restricted {
        host_path_volumes(spec, &mut failures);
    }
    host_ports(&containers, &mut failures);
    privileged(&containers, &mut failures);
    proc_mount(&containers, &mut failures);
    if !restricted {
        baseline_seccomp(spec, &containers, &mut failures);
    } else {
        privilege_escalation(&containers, &mut failures);
        restricted_capabilities(&containers, &mut failures);
        restricted_volumes(spec, &mut failures);
        run_as_non_root(spec, &containers, &mut failures);
        run_as_user(spec, &containers, &mut failures);
        restricted_seccomp(spec, &containers, &mut failures);
    }
    if failures.is_empty() {
        return None;
    }
    Some(format!(
        "violates PodSecurity \"{level}:latest\": {}",
        failures.join(", ")
    ))
}

/// `(name, container)` for every container, init container and ephemeral container.
fn containers(spec: &Value) -> Vec<(&str, &Value)> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .map(|c| (c["name"].as_str().unwrap_or_default(), c))
        .collect()
}

fn security<'a>(c: &'a Value, field: &str) -> Option<&'a Value> {
    c.get("securityContext")?.get(field)
}

/// `container "a"` or `containers "a", "b"`.
fn named(what: &str, names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let plural = if names.len() == 1 { "" } else { "s" };
    format!("{what}{plural} {}", quoted.join(", "))
}

fn host_namespaces(spec: &Value, failures: &mut Vec<String>) {
    let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|k| spec[**k].as_bool() == Some(true))
        .map(|k| format!("{k}=true"))
        .collect();
    if !set.is_empty() {
        failures.push(format!("host namespaces ({})", set.join(", ")));
    }
}

fn privileged(containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let names: Vec<&str> = containers
        .iter()
        .filter(|(_, c)| security(c, "privileged").and_then(Value::as_bool) == Some(true))
        .map(|(n, _)| *n)
        .collect();
    if !names.is_empty() {
        failures.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            named("container", &names)
        ));
    }
}

/// Capabilities a baseline pod may add: the container runtimes' defaults.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added(c: &Value) -> Vec<&str> {
    c.pointer("/securityContext/capabilities/add")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `container "a" must not include "NET_ADMIN", "SYS_TIME" in securityContext.capabilities.add`
/// for each container adding something outside `allowed`.
fn forbidden_adds(containers: &[(&str, &Value)], allowed: &[&str]) -> Vec<String> {
    containers
        .iter()
        .filter_map(|(n, c)| {
            let bad: Vec<String> = added(c)
                .into_iter()
                .filter(|cap| !allowed.contains(cap))
                .map(|cap| format!("{cap:?}"))
                .collect();
            (!bad.is_empty()).then(|| {
                format!(
                    "container {n:?} must not include {} in securityContext.capabilities.add",
                    bad.join(", ")
                )
            })
        })
        .collect()
}

fn baseline_capabilities(containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let bad = forbidden_adds(containers, BASELINE_CAPABILITIES);
    if !bad.is_empty() {
        failures.push(format!("non-default capabilities ({})", bad.join("; ")));
    }
}

fn restricted_capabilities(containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let not_dropping: Vec<&str> = containers
        .iter()
        .filter(|(_, c)| {
            !c.pointer("/securityContext/capabilities/drop")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x == "ALL"))
        })
        .map(|(n, _)| *n)
        .collect();
    let mut details = Vec::new();
    if !not_dropping.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            named("container", &not_dropping)
        ));
    }
    details.extend(forbidden_adds(containers, &["NET_BIND_SERVICE"]));
    if !details.is_empty() {
        failures.push(format!(
            "unrestricted capabilities ({})",
            details.join("; ")
        ));
    }
}

fn volumes(spec: &Value) -> Vec<&Value> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn host_path_volumes(spec: &Value, failures: &mut Vec<String>) {
    let names: Vec<&str> = volumes(spec)
        .into_iter()
        .filter(|v| v.get("hostPath").is_some())
        .map(|v| v["name"].as_str().unwrap_or_default())
        .collect();
    if !names.is_empty() {
        failures.push(format!("hostPath volumes ({})", named("volume", &names)));
    }
}

/// The volume sources a restricted pod may use.
const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn restricted_volumes(spec: &Value, failures: &mut Vec<String>) {
    let bad: Vec<String> = volumes(spec)
        .into_iter()
        .filter_map(|v| {
            let name = v["name"].as_str().unwrap_or_default();
            let kind = v
                .as_object()?
                .keys()
                .find(|k| *k != "name" && !RESTRICTED_VOLUME_TYPES.contains(&k.as_str()))?;
            Some(format!(
                "volume {name:?} uses restricted volume type {kind:?}"
            ))
        })
        .collect();
    if !bad.is_empty() {
        failures.push(format!("restricted volume types ({})", bad.join(", ")));
    }
}

fn host_ports(containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let details: Vec<String> = containers
        .iter()
        .filter_map(|(n, c)| {
            let ports: Vec<String> = c
                .get("ports")
                .and_then(Value::as_array)?
                .iter()
                .filter_map(|p| p["hostPort"].as_i64().filter(|h| *h != 0))
                .map(|h| h.to_string())
                .collect();
            let plural = if ports.len() == 1 { "" } else { "s" };
            (!ports.is_empty()).then(|| format!("{n:?} uses hostPort{plural} {}", ports.join(", ")))
        })
        .collect();
    if !details.is_empty() {
        let plural = if details.len() == 1 { "" } else { "s" };
        failures.push(format!(
            "hostPort (container{plural} {})",
            details.join(", ")
        ));
    }
}

fn proc_mount(containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let names: Vec<&str> = containers
        .iter()
        .filter(|(_, c)| {
            security(c, "procMount")
                .and_then(Value::as_str)
                .is_some_and(|m| m != "Default")
        })
        .map(|(n, _)| *n)
        .collect();
    if !names.is_empty() {
        failures.push(format!(
            "procMount ({} must not set securityContext.procMount to \"Unmasked\")",
            named("container", &names)
        ));
    }
}

fn privilege_escalation(containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let names: Vec<&str> = containers
        .iter()
        .filter(|(_, c)| {
            security(c, "allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false)
        })
        .map(|(n, _)| *n)
        .collect();
    if !names.is_empty() {
        failures.push(format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            named("container", &names)
        ));
    }
}

fn pod_security<'a>(spec: &'a Value, field: &str) -> Option<&'a Value> {
    spec.get("securityContext")?.get(field)
}

fn run_as_non_root(spec: &Value, containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let pod = pod_security(spec, "runAsNonRoot").and_then(Value::as_bool);
    let mut details = Vec::new();
    if pod == Some(false) {
        details.push("pod must not set securityContext.runAsNonRoot=false".to_string());
    }
    let explicit_false: Vec<&str> = containers
        .iter()
        .filter(|(_, c)| security(c, "runAsNonRoot").and_then(Value::as_bool) == Some(false))
        .map(|(n, _)| *n)
        .collect();
    if !explicit_false.is_empty() {
        details.push(format!(
            "{} must not set securityContext.runAsNonRoot=false",
            named("container", &explicit_false)
        ));
    }
    if pod.is_none() {
        let unset: Vec<&str> = containers
            .iter()
            .filter(|(_, c)| security(c, "runAsNonRoot").is_none())
            .map(|(n, _)| *n)
            .collect();
        if !unset.is_empty() {
            details.push(format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                named("container", &unset)
            ));
        }
    }
    if !details.is_empty() {
        failures.push(format!("runAsNonRoot != true ({})", details.join("; ")));
    }
}

fn run_as_user(spec: &Value, containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let mut details = Vec::new();
    if pod_security(spec, "runAsUser").and_then(Value::as_i64) == Some(0) {
        details.push("pod must not set runAsUser=0".to_string());
    }
    let names: Vec<&str> = containers
        .iter()
        .filter(|(_, c)| security(c, "runAsUser").and_then(Value::as_i64) == Some(0))
        .map(|(n, _)| *n)
        .collect();
    if !names.is_empty() {
        details.push(format!(
            "{} must not set runAsUser=0",
            named("container", &names)
        ));
    }
    if !details.is_empty() {
        failures.push(format!("runAsUser=0 ({})", details.join("; ")));
    }
}

fn seccomp_type(v: &Value) -> Option<&str> {
    v.pointer("/securityContext/seccompProfile/type")
        .and_then(Value::as_str)
}

fn baseline_seccomp(spec: &Value, containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let mut details = Vec::new();
    if pod_security(spec, "seccompProfile").and_then(|p| p["type"].as_str()) == Some("Unconfined") {
        details.push(
            "pod must not set securityContext.seccompProfile.type to \"Unconfined\"".to_string(),
        );
    }
    let names: Vec<&str> = containers
        .iter()
        .filter(|(_, c)| seccomp_type(c) == Some("Unconfined"))
        .map(|(n, _)| *n)
        .collect();
    if !names.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            named("container", &names)
        ));
    }
    if !details.is_empty() {
        failures.push(format!("seccompProfile ({})", details.join("; ")));
    }
}

fn restricted_seccomp(spec: &Value, containers: &[(&str, &Value)], failures: &mut Vec<String>) {
    let allowed = |t: Option<&str>| matches!(t, Some("RuntimeDefault" | "Localhost"));
    let pod = pod_security(spec, "seccompProfile").and_then(|p| p["type"].as_str());
    let mut details = Vec::new();
    if pod.is_some() && !allowed(pod) {
        details.push(format!(
            "pod must not set securityContext.seccompProfile.type to {:?}",
            pod.unwrap_or_default()
        ));
    }
    let bad: Vec<&str> = containers
        .iter()
        .filter(|(_, c)| seccomp_type(c).is_some() && !allowed(seccomp_type(c)))
        .map(|(n, _)| *n)
        .collect();
    if !bad.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to a value other than \"RuntimeDefault\" or \"Localhost\"",
            named("container", &bad)
        ));
    }
    if pod.is_none() {
        let unset: Vec<&str> = containers
            .iter()
            .filter(|(_, c)| seccomp_type(c).is_none())
            .map(|(n, _)| *n)
            .collect();
        if !unset.is_empty() {
            details.push(format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                named("container", &unset)
            ));
        }
    }
    if !details.is_empty() {
        failures.push(format!("seccompProfile ({})", details.join("; ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compliant() -> Value {
        json!({"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "x", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}})
    }

    #[test]
    fn a_compliant_pod_passes_both_levels_and_a_bare_one_passes_baseline_only() {
        assert_eq!(check("restricted", &compliant()), None);
        assert_eq!(check("baseline", &compliant()), None);
        let bare = json!({"spec": {"containers": [{"name": "app", "image": "x"}]}});
        assert_eq!(check("baseline", &bare), None);
        assert_eq!(
            check("restricted", &bare).unwrap(),
            "violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
    }

    #[test]
    fn each_host_or_privilege_widening_is_named() {
        let with = |f: &dyn Fn(&mut Value)| {
            let mut p = compliant();
            f(&mut p);
            p
        };
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                with(&|p| p["spec"]["hostNetwork"] = json!(true)),
                "baseline",
                "host namespaces (hostNetwork=true)",
            ),
            (
                with(&|p| {
                    p["spec"]["hostPID"] = json!(true);
                    p["spec"]["hostIPC"] = json!(true)
                }),
                "restricted",
                "host namespaces (hostPID=true, hostIPC=true)",
            ),
            (
                with(&|p| {
                    p["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true)
                }),
                "baseline",
                "privileged (container \"app\" must not set securityContext.privileged=true)",
            ),
            (
                with(&|p| p["spec"]["volumes"] = json!([{"name": "h", "hostPath": {"path": "/"}}])),
                "baseline",
                "hostPath volumes (volume \"h\")",
            ),
            (
                with(&|p| p["spec"]["volumes"] = json!([{"name": "h", "hostPath": {"path": "/"}}])),
                "restricted",
                "restricted volume types (volume \"h\" uses restricted volume type \"hostPath\")",
            ),
            (
                with(&|p| {
                    p["spec"]["containers"][0]["ports"] =
                        json!([{"containerPort": 80, "hostPort": 8080}])
                }),
                "baseline",
                "hostPort (container \"app\" uses hostPort 8080)",
            ),
            (
                with(&|p| {
                    p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                        json!(["NET_ADMIN"])
                }),
                "baseline",
                "non-default capabilities (container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)",
            ),
            (
                with(&|p| {
                    p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                        json!(["NET_ADMIN"])
                }),
                "restricted",
                "unrestricted capabilities (container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)",
            ),
            (
                with(&|p| p["spec"]["securityContext"]["runAsUser"] = json!(0)),
                "restricted",
                "runAsUser=0 (pod must not set runAsUser=0)",
            ),
            (
                with(&|p| p["spec"]["securityContext"]["runAsNonRoot"] = json!(false)),
                "restricted",
                "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)",
            ),
        ];
        for (pod, level, want) in cases {
            assert_eq!(
                check(level, &pod).unwrap(),
                format!("violates PodSecurity \"{level}:latest\": {want}"),
            );
        }
        // root is a restricted matter only
        let root = with(&|p| p["spec"]["securityContext"]["runAsUser"] = json!(0));
        assert_eq!(check("baseline", &root), None);
    }

    #[test]
    fn only_baseline_and_restricted_are_enforced() {
        let ns =
            |l: &str| json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": l}}});
        assert_eq!(enforced_level(&ns("restricted")), Some("restricted"));
        assert_eq!(enforced_level(&ns("baseline")), Some("baseline"));
        assert_eq!(enforced_level(&ns("privileged")), None);
        assert_eq!(enforced_level(&json!({"metadata": {}})), None);
    }
}
