//! What the plugin's tests need: a kube-test API server with Landlord's CRDs, the built
//! `kubectl-tenant` binary run against it (piped, or on a pseudo-terminal), and a test that
//! plays the operator by writing the Tenant's status itself.
//!
//! Nothing waits by sleeping: every wait polls for the awaited output or state and fails at a
//! deadline that a passing test never reaches.

#![allow(dead_code)] // each test uses its own part

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use landlord::api::Tenant;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Generous: two busy cores run the server, the plugin and other tests.
pub const DEADLINE: Duration = Duration::from_secs(90);

pub const BIN: &str = env!("CARGO_BIN_EXE_kubectl-tenant");

pub struct Env {
    pub client: Client,
    pub server: kube_test::RunningServer,
    pub kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A kube-test server with Landlord's CRDs installed (`crds: false` leaves them out).
pub async fn start(tag: &str, crds: bool) -> Env {
    let server = kube_test::ApiServer::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("kubectl-tenant-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let client = server.client().await.unwrap();
    if crds {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in landlord::api::crds() {
            api.patch(
                &crd.name_any(),
                &PatchParams::apply("plugin-tests").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap();
        }
        let tenants: Api<Tenant> = Api::all(client.clone());
        poll("CRDs served", || async {
            tenants.list(&ListParams::default()).await.is_ok()
        })
        .await;
    }
    Env {
        client,
        server,
        kubeconfig,
        dir,
    }
}

/// What a finished plugin run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    /// The plugin's command line with this server's kubeconfig, unless `args` name another.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(BIN);
        if !args.contains(&"--kubeconfig") {
            c.arg("--kubeconfig").arg(&self.kubeconfig);
        }
        c.args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Run the plugin to its end, piped.
    pub async fn run(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(DEADLINE, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl-tenant {args:?} did not finish"))
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Run it and expect success with exactly `stdout` and nothing on stderr.
    pub async fn ok(&self, args: &[&str], stdout: &str) {
        let run = self.run(args).await;
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (0, stdout, ""),
            "kubectl-tenant {args:?}"
        );
    }

    /// Run it and expect exit `code`, nothing on stdout and `error: <message>` on stderr.
    pub async fn fails(&self, args: &[&str], code: i32, message: &str) {
        let run = self.run(args).await;
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (code, "", format!("error: {message}\n").as_str()),
            "kubectl-tenant {args:?}"
        );
    }

    pub fn tenants(&self) -> Api<Tenant> {
        Api::all(self.client.clone())
    }

    /// Server-side apply an object under `manager`.
    pub async fn apply(&self, manager: &str, value: Value) {
        let name = value["metadata"]["name"].as_str().unwrap().to_string();
        let kind = value["kind"].as_str().unwrap();
        let ar = match kind {
            "Tenant" => kube::core::ApiResource::erase::<Tenant>(&()),
            "TenantQuota" => kube::core::ApiResource::erase::<landlord::api::TenantQuota>(&()),
            "TenantUsage" => kube::core::ApiResource::erase::<landlord::api::TenantUsage>(&()),
            other => panic!("no test applies {other}"),
        };
        let api: Api<kube::api::DynamicObject> = Api::all_with(self.client.clone(), &ar);
        // Forced, as `kubectl apply --server-side --force-conflicts`: the manager takes the
        // fields it sets over from the plugin.
        api.patch(
            &name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&value),
        )
        .await
        .unwrap();
    }

    /// A Tenant on plan `pro` made by someone else than the plugin, generation 1.
    pub async fn tenant(&self, name: &str) {
        self.apply(
            "test",
            json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
                   "metadata": {"name": name}, "spec": {"quotaRef": "pro"}}),
        )
        .await;
    }

    /// Play the operator: merge `status` into the Tenant's status.
    pub async fn status(&self, name: &str, status: Value) {
        self.tenants()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .unwrap();
    }

    pub async fn get(&self, name: &str) -> Option<Tenant> {
        self.tenants().get_opt(name).await.unwrap()
    }

    pub async fn generation(&self, name: &str) -> i64 {
        self.get(name).await.unwrap().metadata.generation.unwrap()
    }
}

/// Poll `check` until it holds; fail after [`DEADLINE`].
pub async fn poll<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plugin run whose stdout is read line by line while it runs.
pub struct Piped {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pub seen: Vec<String>,
}

impl Piped {
    pub fn spawn(env: &Env, args: &[&str]) -> Piped {
        let mut child = env.command(args).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        Piped {
            child,
            lines: BufReader::new(stdout).lines(),
            seen: Vec::new(),
        }
    }

    /// The next line of stdout.
    pub async fn line(&mut self) -> String {
        let line = tokio::time::timeout(DEADLINE, self.lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("a line before the end");
        self.seen.push(line.clone());
        line
    }

    /// Wait for the end: the exit code, the rest of stdout and all of stderr.
    pub async fn finish(mut self) -> Run {
        while let Some(line) = tokio::time::timeout(DEADLINE, self.lines.next_line())
            .await
            .expect("the end in time")
            .unwrap()
        {
            self.seen.push(line);
        }
        let out = tokio::time::timeout(DEADLINE, self.child.wait_with_output())
            .await
            .expect("the end in time")
            .unwrap();
        let mut stdout = self.seen.join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

/// A plugin run on a pseudo-terminal: stdin, stdout and stderr are its slave side.
pub struct Terminal {
    child: std::process::Child,
    master: std::fs::File,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    pub fn spawn(env: &Env, args: &[&str]) -> Terminal {
        let size = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let slave: OwnedFd = pty.slave;
        let mut command = std::process::Command::new(BIN);
        command
            .arg("--kubeconfig")
            .arg(&env.kubeconfig)
            .args(args)
            .env_remove("KUBECONFIG")
            .env("TERM", "xterm-256color")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = command.spawn().unwrap();
        // Our copies of the slave side must go, or the master never reads the end.
        drop(command);
        let master = std::fs::File::from(pty.master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let (mut from, into) = (master.try_clone().unwrap(), output.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Linux answers EIO once every slave descriptor is closed: the end.
            while let Ok(n @ 1..) = from.read(&mut buf) {
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            master,
            output,
            reader: Some(reader),
        }
    }

    /// Everything the terminal showed so far, with `\r` removed.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).replace('\r', "")
    }

    /// Wait until the terminal shows `text`.
    pub async fn shows(&self, text: &str) {
        let start = Instant::now();
        while !self.screen().contains(text) {
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {text:?} on the terminal, which ends with {:?}",
                self.screen()
                    .chars()
                    .rev()
                    .take(1500)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect::<String>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Type `text`.
    pub fn type_text(&mut self, text: &str) {
        use std::io::Write;
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Wait for the end: the exit code and everything shown.
    pub async fn finish(mut self) -> (i32, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < DEADLINE, "the terminal run did not end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let reader = self.reader.take().unwrap();
        poll("the terminal's output read to its end", || async {
            reader.is_finished()
        })
        .await;
        (status.code().unwrap_or(-1), self.screen())
    }
}

/// kubectl's AGE column and `Created:` line depend on the clock: each is checked to be an
/// age and replaced by `AGE`.
pub fn mask_age(table: &str) -> String {
    table
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                return format!("{line}\n");
            }
            let (head, age) = line.rsplit_once(' ').unwrap();
            assert!(
                age.starts_with(|c: char| c.is_ascii_digit())
                    && age
                        .chars()
                        .all(|c| c.is_ascii_digit() || "smhdy".contains(c)),
                "{age:?} is not an age in {line:?}"
            );
            format!("{head} AGE\n")
        })
        .collect()
}
