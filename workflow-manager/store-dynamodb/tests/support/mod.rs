//! Starts moto's server for a test: the DynamoDB (and Batch) emulator `scripts/test`
//! installs. Where it is missing the test says so loudly and skips, unless
//! `WFM_REQUIRE_EMULATORS=1` (set by `scripts/test`) makes that a failure.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

fn moto_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WFM_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    if let Ok(python) = std::env::var("WFM_TEST_PYTHON") {
        let p = PathBuf::from(python).with_file_name("moto_server");
        if p.exists() {
            return Some(p);
        }
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/moto_server");
    venv.exists().then_some(venv)
}

fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

impl Moto {
    /// Starts moto on a free port; `None` (after saying why) when it is not installed.
    pub fn start() -> Option<Moto> {
        let Some(binary) = moto_binary() else {
            let msg = "moto_server not found (set WFM_MOTO_SERVER, or run scripts/test, which installs it into .venv-test)";
            if std::env::var("WFM_REQUIRE_EMULATORS").is_ok_and(|v| v == "1") {
                panic!("{msg}");
            }
            eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !answers(port) {
            if Instant::now() > deadline {
                panic!("moto_server did not answer on port {port} within 30 s");
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
