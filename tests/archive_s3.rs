//! The archive store against a real S3-compatible server: moto in server mode, installed from
//! PyPI into target/venv-moto by `tests/s3_server.py` and started here on a free loopback
//! port, then killed when the test ends however it ends. Without network for PyPI the test
//! says it skipped and passes; everywhere else it runs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use landlord::archive::{ArchiveError, ArchiveStore, Bundle, Key, KeyRing, S3Options, open, seal};
use serde_json::json;

/// How long moto may take to start: generous for a loaded two-core machine; a passing poll
/// returns as soon as it answers.
const DEADLINE: Duration = Duration::from_secs(60);
const BUCKET: &str = "landlord-archives";

/// A running moto server, killed on drop.
struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Moto {
    /// Starts moto with a bucket, or says why it cannot (the reason a test prints when it skips).
    fn start() -> Result<Moto, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let setup = Command::new("python3")
            .arg(root.join("tests/s3_server.py"))
            .output()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        if !setup.status.success() {
            return Err(format!(
                "moto is not available: {}",
                String::from_utf8_lossy(&setup.stderr).trim()
            ));
        }
        let stdout = String::from_utf8_lossy(&setup.stdout);
        let python = stdout.lines().last().unwrap_or_default().trim().to_string();

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = root.join(format!("target/moto-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} -m moto.server: {e}"));
        let mut moto = Moto { child, port, log };

        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto exited with {status}:\n{}", moto.log_text());
            }
            if http(port, "GET", "/").is_ok_and(|status| status == 200) {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "moto did not answer within {DEADLINE:?}:\n{}",
                moto.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // object_store cannot make buckets; moto takes an unsigned PUT.
        let made = http(port, "PUT", &format!("/{BUCKET}")).unwrap();
        assert_eq!(made, 200, "creating the bucket:\n{}", moto.log_text());
        Ok(moto)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn options(&self) -> S3Options {
        S3Options {
            endpoint: Some(format!("http://127.0.0.1:{}", self.port)),
            region: Some("us-east-1".into()),
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
            session_token: None,
            allow_http: true,
        }
    }
}

/// The status code of a bodiless HTTP/1.1 request to 127.0.0.1:`port`.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))
}

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

#[tokio::test]
async fn archives_round_trip_through_s3() {
    let moto = match Moto::start() {
        Ok(moto) => moto,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let url = format!("s3://{BUCKET}/prod/archives");
    let store = ArchiveStore::from_url(&url, &moto.options()).unwrap();
    assert!(store.list().await.unwrap().is_empty());

    let objects: Vec<_> = (0..50)
        .map(|i| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("s{i}"), "namespace": "acme-prod"},
                        "data": {"token": "c2VjcmV0"}}))
        .collect();
    let bundle = Bundle::new(
        "acme",
        Some("pro"),
        json!({"displayName": "ACME"}),
        objects,
        t("2026-03-04T05:06:07Z"),
    )
    .unwrap();
    let key = Key::generate();
    let sealed = seal(&bundle, &key);

    let location = store
        .put("acme", t("2026-03-04T05:06:07Z"), &sealed, &bundle.manifest)
        .await
        .unwrap();
    assert_eq!(location, format!("{url}/acme/20260304T050607.000Z.llarch"));
    let other = store
        .put("beta", t("2026-01-01T00:00:00Z"), &sealed, &bundle.manifest)
        .await
        .unwrap();

    // Read back through the store and verified.
    let opened = open(&store.get(&location).await.unwrap(), &KeyRing::new(key)).unwrap();
    assert_eq!(opened.objects, bundle.objects);
    assert_eq!(
        store.get_manifest(&location).await.unwrap(),
        opened.manifest
    );

    // Listed from the bucket alone, as retention does when no Tenant is left.
    let listed = store.list().await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|a| (a.location.as_str(), a.tenant.as_str(), a.bytes))
        .collect();
    assert_eq!(
        summary,
        [
            (location.as_str(), "acme", sealed.len() as u64),
            (other.as_str(), "beta", sealed.len() as u64)
        ]
    );
    assert_eq!(listed[0].archived_at, t("2026-03-04T05:06:07Z"));

    store.delete(&location).await.unwrap();
    store.delete(&location).await.unwrap();
    assert!(matches!(
        store.get(&location).await,
        Err(ArchiveError::NotFound { .. })
    ));
    assert_eq!(store.list().await.unwrap().len(), 1);
    assert!(matches!(
        store.get_manifest(&location).await,
        Err(ArchiveError::NotFound { .. })
    ));
    // Another prefix in the same bucket is another store.
    let elsewhere =
        ArchiveStore::from_url(&format!("s3://{BUCKET}/staging"), &moto.options()).unwrap();
    assert!(elsewhere.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_store_is_reported_soon() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = S3Options {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        session_token: None,
        allow_http: true,
    };
    let store = ArchiveStore::from_url(&format!("s3://{BUCKET}"), &options).unwrap();
    let start = Instant::now();
    let err = store.list().await.unwrap_err();
    assert!(
        matches!(err, ArchiveError::StoreUnavailable { .. }),
        "{err}"
    );
    assert_eq!(err.reason(), "ArchiveStoreUnavailable");
    assert!(
        err.to_string()
            .starts_with(&format!("the archive store s3://{BUCKET} is unavailable: ")),
        "{err}"
    );
    // Retries are bounded (30 s) so that the controller's own backoff takes over.
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "{:?}",
        start.elapsed()
    );
}
