//! Starts the AWS emulators the tests of the AWS backends run against, each on a free port and
//! stopped on drop: moto's server (DynamoDB, Batch) and LocalStack's Step Functions engine in
//! host mode. `scripts/test` installs both (see `../shared/notes/emulators.md`); where one is
//! missing, a test says so loudly and skips, unless `WFM_REQUIRE_EMULATORS=1` (which
//! `scripts/test` sets) makes that a failure.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running emulator process, stopped on drop.
pub struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// What it is, for messages.
    pub name: &'static str,
    log: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// `GET path` over HTTP/1.0: (status, body), or None if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

fn missing(what: &str) -> Option<Emulator> {
    if std::env::var("WFM_REQUIRE_EMULATORS").is_ok_and(|v| v == "1") {
        panic!("{what}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {what} !!!!!!!!\n");
    None
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Emulator {
    /// moto's server; `None` (after saying why) when it is not installed.
    pub fn moto() -> Option<Emulator> {
        let binary = std::env::var("WFM_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace().join(".venv-test/bin/moto_server"));
        if !binary.exists() {
            return missing(&format!(
                "moto_server not found at {} (set WFM_MOTO_SERVER, or run scripts/test, which installs it)",
                binary.display()
            ));
        }
        let port = free_port();
        let mut command = Command::new(&binary);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Some moto integrations call back to localhost:$MOTO_PORT.
            .env("MOTO_PORT", port.to_string());
        Some(Self::spawn("moto", command, port, |port| {
            http_get(port, "/moto-api/").is_some_and(|(s, _)| s == 200)
        }))
    }

    /// LocalStack with only Step Functions; `None` (after saying why) when not installed.
    pub fn localstack() -> Option<Emulator> {
        let python = std::env::var("WFM_LOCALSTACK_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace().join(".venv-localstack/bin/python"));
        if !python.exists() {
            return missing(&format!(
                "LocalStack's Python not found at {} (set WFM_LOCALSTACK_PYTHON, or run scripts/test, which installs it)",
                python.display()
            ));
        }
        let port = free_port();
        let state = std::env::temp_dir().join(format!("wfm-localstack-{port}"));
        let mut command = Command::new(&python);
        command
            .args(["-m", "localstack.runtime.main"])
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("SERVICES", "stepfunctions,sts")
            .env("EAGER_SERVICE_LOADING", "1")
            .env("DNS_ADDRESS", "0")
            .env("LOCALSTACK_VOLUME_DIR", &state)
            .env("FILESYSTEM_ROOT", &state);
        Some(Self::spawn("LocalStack", command, port, |port| {
            http_get(port, "/_localstack/health").is_some_and(|(_, body)| {
                body.contains("\"stepfunctions\": \"running\"")
                    || body.contains("\"stepfunctions\":\"running\"")
            })
        }))
    }

    fn spawn(
        name: &'static str,
        mut command: Command,
        port: u16,
        ready: impl Fn(u16) -> bool,
    ) -> Emulator {
        let log = std::env::temp_dir().join(format!("wfm-{}-{port}.log", name.to_lowercase()));
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = command
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut emulator = Emulator {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            name,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !ready(port) {
            if let Ok(Some(status)) = emulator.child.try_wait() {
                panic!("{name} exited with {status}:\n{}", emulator.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} not ready on port {port} within 90 s:\n{}",
                    emulator.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it now (SIGTERM, then SIGKILL after 10 s: LocalStack can hang on open long polls).
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}
