//! Starting the real `mailsort-backend` binary on loopback for tests, with
//! the fetched models and a bundle built by the real `mailsort` CLI.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The key every test server accepts.
pub const KEY: &str = "test-key-0123456789abcdef";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn env_dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(default))
}

pub fn model_dir() -> PathBuf {
    let dir = env_dir("MAILSORT_MODEL_DIR", "models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model_int8.onnx").exists(),
        "no encoder in {}: run `scripts/test.sh` (or `mailsort models fetch`) first",
        dir.display()
    );
    dir
}

pub fn reranker_dir() -> PathBuf {
    let dir = env_dir("MAILSORT_RERANKER_DIR", "models/reranker");
    assert!(
        dir.join("manifest.json").exists(),
        "no reranker in {}: run `scripts/test.sh` (or `mailsort models reranker`) first",
        dir.display()
    );
    dir
}

pub fn datasets() -> PathBuf {
    env_dir("MAILSORT_DATASETS", "../shared/datasets")
}

pub fn ort_lib() -> PathBuf {
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .expect("ORT_DYLIB_PATH must name libonnxruntime.so (source scripts/lib.sh)");
    assert!(
        lib.exists(),
        "ORT_DYLIB_PATH {} does not exist",
        lib.display()
    );
    lib
}

/// Rows of a JSONL dataset file (plain or .gz): every `stride`-th, up to `max`.
pub fn rows(file: &Path, stride: usize, max: usize) -> Vec<Value> {
    let f = std::fs::File::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let reader: Box<dyn BufRead> = if file.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    reader
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| !l.trim().is_empty())
        .step_by(stride)
        .take(max)
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect()
}

/// The `mailsort` CLI, built alongside this crate by `cargo test --workspace`.
fn mailsort_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .join("mailsort");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p mailsort-edge` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A BANKING77 bundle (every 8th training row, head only), built once per
/// test binary with the real CLI.
pub fn bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("mailsort-backend-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let train = dir.join("train.jsonl");
        let mut f = std::fs::File::create(&train).unwrap();
        for row in rows(&datasets().join("banking77/train.jsonl"), 8, usize::MAX) {
            writeln!(f, "{row}").unwrap();
        }
        let out = dir.join("b77.msb");
        let status = Command::new(mailsort_bin())
            .args(["build", "--no-exemplars", "--train"])
            .arg(&train)
            .arg("--out")
            .arg(&out)
            .env("MAILSORT_MODEL_DIR", model_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mailsort runs");
        assert!(status.success(), "mailsort build failed");
        out
    })
}

/// A running backend; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts the backend with the test bundle, key and `extra` flags and
    /// waits until `/ready` is 200.
    pub fn start(extra: &[&str]) -> Server {
        let mut child = Self::command(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("mailsort-backend starts");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the backend says where it listens");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        let server = Server {
            child,
            base: format!("http://{addr}"),
            stderr: rx,
        };
        server.wait_ready();
        server
    }

    /// The command line without spawning, for start-up failure tests.
    pub fn command(extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailsort-backend"));
        cmd.args(["--bind", "127.0.0.1:0", "--bundle"])
            .arg(bundle())
            .arg("--model-dir")
            .arg(model_dir())
            .arg("--ort-lib")
            .arg(ort_lib())
            .args(["--device", "cpu", "--threads", "1"])
            .args(extra)
            // An env var, so a test's own --reranker-dir wins.
            .env("MAILSORT_RERANKER_DIR", reranker_dir())
            .env("MAILSORT_API_KEYS", KEY)
            .env("MAILSORT_LOG", "info")
            .env_remove("MAILSORT_BUNDLES")
            .stdout(Stdio::null());
        cmd
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(180) {
            if get_status(&self.base, "/ready") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("backend not ready after 180 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        self.child.wait().expect("backend exits")
    }

    /// The server's peak resident memory so far (Linux `VmHWM`).
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status");
        kib * 1024
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status of a plain GET, over std's TCP (usable inside or outside a runtime).
pub fn get_status(base: &str, path: &str) -> Option<u16> {
    use std::io::Read;
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// An async client with the test key.
pub fn client() -> ::reqwest::Client {
    ::reqwest::Client::new()
}

/// POSTs JSON with the test key; (status, body as JSON or Null).
pub async fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = client()
        .post(url)
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
