//! Golden transcripts of `wfm` sessions against a real server (in process, over HTTP): each
//! file of `tests/transcripts/` is a session, its `$ wfm ...` lines the commands, the rest
//! what they printed (stdout, then stderr after `[stderr]`, and `[exit N]` when not 0). The
//! test runs the commands with the built binary and compares the whole transcript.
//!
//! Ids are shown as `<ID1>`, `<ID2>`... in order of appearance (a command may use them), times
//! as `<TIME>`, durations as `<DUR>`, runs of spaces between words as two (table columns
//! follow the width of what they hold). `WFM_BLESS=1` rewrites the files
//! from what ran (review the diff before committing). Hand-written rather than `trycmd`:
//! commands here use the ids earlier commands printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

struct Normalizer {
    ids: Vec<String>,
    uuid: Regex,
    time: Regex,
    dur: Regex,
    spaces: Regex,
}

impl Normalizer {
    fn new() -> Self {
        Self {
            ids: Vec::new(),
            uuid: Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
                .expect("re"),
            time: Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
                .expect("re"),
            dur: Regex::new(r"\b(\d+m\d\ds|\d+(\.\d+)?m?s)\b").expect("re"),
            spaces: Regex::new(r"(\S) {2,}").expect("re"),
        }
    }

    fn normalize(&mut self, text: &str) -> String {
        for m in self.uuid.find_iter(text) {
            if !self.ids.iter().any(|i| i == m.as_str()) {
                self.ids.push(m.as_str().to_string());
            }
        }
        let mut out = text.to_string();
        for (i, id) in self.ids.iter().enumerate() {
            out = out.replace(id, &format!("<ID{}>", i + 1));
        }
        let out = self.time.replace_all(&out, "<TIME>");
        let out = self.dur.replace_all(&out, "<DUR>");
        let out = self.spaces.replace_all(&out, "$1  ");
        out.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The command with `<IDn>` placeholders replaced by the ids they stand for.
    fn expand(&self, command: &str) -> String {
        let mut out = command.to_string();
        for (i, id) in self.ids.iter().enumerate().rev() {
            out = out.replace(&format!("<ID{}>", i + 1), id);
        }
        out
    }
}

fn commands(transcript: &str) -> Vec<String> {
    transcript
        .lines()
        .filter_map(|l| l.strip_prefix("$ wfm "))
        .map(str::to_string)
        .collect()
}

fn run_session(url: &str, dir: &Path, commands: &[String]) -> String {
    let mut normalizer = Normalizer::new();
    let mut out = String::new();
    for command in commands {
        let args = shlex::split(&normalizer.expand(command))
            .unwrap_or_else(|| panic!("cannot split: {command}"));
        let result = Command::new(env!("CARGO_BIN_EXE_wfm"))
            .args(&args)
            .current_dir(dir)
            .env("WORKFLOW_MANAGER_URL", url)
            .env_remove("WORKFLOW_MANAGER_TOKEN")
            .env_remove("NO_COLOR")
            .output()
            .expect("run wfm");
        let stdout = normalizer.normalize(&String::from_utf8_lossy(&result.stdout));
        let stderr = normalizer.normalize(&String::from_utf8_lossy(&result.stderr));
        out.push_str(&format!("$ wfm {command}\n"));
        if !stdout.is_empty() {
            out.push_str(&stdout);
            out.push('\n');
        }
        if !stderr.is_empty() {
            out.push_str("[stderr]\n");
            out.push_str(&stderr);
            out.push('\n');
        }
        let code = result.status.code().unwrap_or(-1);
        if code != 0 {
            out.push_str(&format!("[exit {code}]\n"));
        }
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sessions_match_their_golden_transcripts() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("transcripts"))
        .expect("transcripts")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts");
    let bless = std::env::var_os("WFM_BLESS").is_some();
    let mut failures = Vec::new();
    for file in files {
        // A fresh service per session, so that each transcript stands alone.
        let data = tempfile::tempdir().expect("dir");
        let running = workflow_manager::start(&workflow_manager::Config::isolated(data.path()))
            .await
            .expect("start");
        let url = format!("http://{}", running.addr);
        let expected = std::fs::read_to_string(&file).expect("read transcript");
        let commands = commands(&expected);
        let dir = root.clone();
        let actual = tokio::task::spawn_blocking(move || run_session(&url, &dir, &commands))
            .await
            .expect("session");
        running.stop().await;
        if actual != expected {
            if bless {
                std::fs::write(&file, &actual).expect("bless");
            } else {
                let diff = similar::TextDiff::from_lines(&expected, &actual)
                    .unified_diff()
                    .header("golden", "actual")
                    .to_string();
                failures.push(format!("{}:\n{diff}", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "transcripts differ (WFM_BLESS=1 rewrites them; review the diff):\n{}",
        failures.join("\n")
    );
}

/// On a terminal (a pseudo-terminal made by util-linux's `script`), `follow` draws its table
/// in colour, and still exits with the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_draws_a_live_coloured_table_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("\n*** SKIPPED follow_draws_a_live_coloured_table_on_a_terminal: no `script` (util-linux) to make a terminal ***\n");
        return;
    }
    let data = tempfile::tempdir().expect("dir");
    let running = workflow_manager::start(&workflow_manager::Config::isolated(data.path()))
        .await
        .expect("start");
    let url = format!("http://{}", running.addr);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let output = tokio::task::spawn_blocking(move || {
        let wfm = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_wfm"))
                .args(args)
                .current_dir(&root)
                .env("WORKFLOW_MANAGER_URL", &url)
                .output()
                .expect("run wfm")
        };
        assert!(wfm(&["definitions", "apply", "fixtures/definitions"])
            .status
            .success());
        let started = wfm(&["start", "check-order", "--input", r#"{"quantity": 0}"#]);
        let id = String::from_utf8_lossy(&started.stdout).trim().to_string();
        let command = format!(
            "{} workflows follow {id} --interval-ms 50",
            env!("CARGO_BIN_EXE_wfm")
        );
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("WORKFLOW_MANAGER_URL", &url)
            .env_remove("NO_COLOR")
            .output()
            .expect("run script")
    })
    .await
    .expect("join");
    running.stop().await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(3),
        "failed workflow exits 3: {text}"
    );
    assert!(text.contains("STATE") && text.contains("Reject"), "{text}");
    assert!(
        text.contains("\u{1b}[31mfailed"),
        "failed in red on a terminal: {text:?}"
    );
}
