//! Start-up benchmark: time from process start to `/readyz` = 200 on SQLite, and idle
//! resident memory after start-up, for the built release binary.
//!
//! ```sh
//! cargo build --release --bin vouch && cargo run --release --example startup_bench
//! ```
//!
//! Goals (issue "Foundation"): median start-to-ready under 250 ms; idle RSS under 40 MB.
//! It prints numbers; it does not fail a build (timings belong in benchmarks, not tests).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 21;
const GOAL_READY_MS: f64 = 250.0;
const GOAL_RSS_MB: f64 = 40.0;

fn main() {
    let binary = vouch_binary();
    println!("binary: {}", binary.display());
    println!("runs:   {RUNS} per case\n");

    let key = {
        let out = Command::new(&binary)
            .args(["rotate-key", "--generate"])
            .stderr(Stdio::null())
            .output()
            .expect("run vouch rotate-key --generate");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };

    let mut fresh = Vec::new();
    let mut existing = Vec::new();
    let mut rss = Vec::new();
    let shared_dir = tempfile::tempdir().unwrap();
    let shared_db = shared_dir.path().join("vouch.db");
    for run in 0..RUNS {
        // A new database each time: start-up includes creating the schema.
        let dir = tempfile::tempdir().unwrap();
        let (elapsed, _) = start_until_ready(&binary, &key, &dir.path().join("vouch.db"), false);
        fresh.push(elapsed);
        // The database a restarted instance finds: already migrated.
        let (elapsed, idle_rss) = start_until_ready(&binary, &key, &shared_db, run > 0);
        if run > 0 {
            existing.push(elapsed);
            rss.push(idle_rss);
        }
    }

    report(
        "start -> /readyz 200, new database",
        &mut fresh,
        GOAL_READY_MS,
        "ms",
    );
    report(
        "start -> /readyz 200, existing database",
        &mut existing,
        GOAL_READY_MS,
        "ms",
    );
    report(
        "idle resident memory after start-up",
        &mut rss,
        GOAL_RSS_MB,
        "MB",
    );
}

fn vouch_binary() -> PathBuf {
    if let Ok(path) = std::env::var("VOUCH_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/examples/startup_bench -> target/<profile>/vouch
    let exe = std::env::current_exe().unwrap();
    let candidate = exe.parent().unwrap().parent().unwrap().join("vouch");
    assert!(
        candidate.exists(),
        "{} not found: run `cargo build --release --bin vouch` first (or set VOUCH_BIN)",
        candidate.display()
    );
    candidate
}

/// Starts `vouch serve`, polls `/readyz` until 200, samples idle RSS, then stops it.
fn start_until_ready(
    binary: &PathBuf,
    key: &str,
    db: &std::path::Path,
    sample_rss: bool,
) -> (f64, f64) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("serve")
        .env_clear()
        .env("VOUCH__DATABASE__URL", format!("sqlite://{}", db.display()))
        .env("VOUCH__ENCRYPTION__MASTER_KEY", key)
        .env("VOUCH__HTTP__BIND", addr.to_string())
        .env("VOUCH__LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vouch serve");
    let deadline = started + Duration::from_secs(10);
    while !ready(addr) {
        assert!(
            Instant::now() < deadline,
            "vouch did not become ready within 10 s"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let rss_mb = if sample_rss {
        std::thread::sleep(Duration::from_millis(500));
        resident_mb(&child)
    } else {
        0.0
    };
    stop(&mut child);
    (elapsed_ms, rss_mb)
}

fn ready(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(50)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

fn resident_mb(child: &Child) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn report(name: &str, samples: &mut [f64], goal: f64, unit: &str) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = samples[samples.len() / 2];
    let p90 = samples[(samples.len() * 9 / 10).min(samples.len() - 1)];
    let verdict = if median < goal { "meets" } else { "MISSES" };
    println!(
        "{name:<42} median {median:>7.1} {unit}   p90 {p90:>7.1} {unit}   min {:>7.1} {unit}   goal < {goal} {unit}: {verdict}",
        samples[0]
    );
}
