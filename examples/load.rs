//! Load harness: drives a separately running `vouch serve` over HTTP, against the sandbox
//! upstreams (Microsoft and SMS, served by this process on a runtime of their own), on SQLite
//! (default) or PostgreSQL, and prints throughput, p50/p99 per step, errors, and whether the
//! audit log holds every step it saw succeed.
//!
//! ```sh
//! cargo build --release --bin vouch
//! cargo run --release --example load -- --scenario flows --technicians 200 --seconds 60
//! cargo run --release --example load -- --scenario burst --starts 8000
//! cargo run --release --example load -- --scenario pending --pending 10000 --hold-seconds 30 --settle-seconds 60
//! cargo run --release --example load -- --scenario two-instances --database-url postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! Vouch is another process (the built `target/<profile>/vouch`, or `VOUCH_BIN`), so the
//! load generator never shares its runtime; its RSS and open files are read from `/proc`.
//! With `--database-url postgres://…` a fresh database is created for the run (and dropped
//! after it), as the tests do. Every request goes to 127.0.0.1 only, and every loop is
//! bounded in count and time.
//!
//! Flows go through the management API with an admin API key (`/api/v1/verifications`,
//! `/api/v1/password-resets`), then the user's secure share page (`/s/{token}`): the pod API
//! would add a PSA-signed pod load per technician (the PSA sandbox and the pod page render
//! in every flow) while the steps measured here, the push, the reset and the share, run the
//! same core services either way. Each simulated technician has users of its own in the
//! Microsoft sandbox, so none collides with another's per-user limits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use sea_orm::{ConnectionTrait, Database, EntityTrait};
use secrecy::ExposeSecret;
use tokio::sync::Mutex;
use vouch::sandbox::microsoft::{
    ConsentDecision, DEMO_TENANT_ID, IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET, MicrosoftSandbox,
    NewSandboxUser, PushAnswer, PushHold, Service,
};
use vouch::sandbox::sms::SmsSandbox;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Technicians repeating start, approve, reset, reveal.
    Flows,
    /// N starts at once.
    Burst,
    /// N pushes held unanswered; memory, open files and status reads meanwhile.
    Pending,
    /// Two Vouch processes on one PostgreSQL: limits and idempotency across both.
    TwoInstances,
}

#[derive(Debug, Parser)]
#[command(about = "Load harness for Vouch (runs `vouch serve` as a separate process)")]
struct Args {
    #[arg(long, value_enum, default_value = "flows")]
    scenario: Scenario,
    /// flows: simulated technicians, each running whole flows one after another.
    #[arg(long, default_value_t = 20)]
    technicians: usize,
    /// flows: how long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// flows: users of each technician's own, taken in turn.
    #[arg(long, default_value_t = 2)]
    users_per_technician: usize,
    /// burst: starts sent at once.
    #[arg(long, default_value_t = 200)]
    starts: usize,
    /// pending: pushes held unanswered.
    #[arg(long, default_value_t = 200)]
    pending: usize,
    /// pending: how long the sandbox phone holds each push before approving it (burst: 1 s).
    #[arg(long, default_value_t = 10)]
    hold_seconds: u64,
    /// pending: how long after the pushes settle to read Vouch's memory again.
    #[arg(long, default_value_t = 60)]
    settle_seconds: u64,
    /// pending: concurrent status readers while the pushes wait.
    #[arg(long, default_value_t = 8)]
    readers: usize,
    /// pending: starts in flight at once while the pushes are being sent.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// `postgres://USER@HOST:PORT/DB`: a fresh database is made beside DB for the run.
    /// Without it: SQLite in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Vouch's `database.max_connections` (its default otherwise).
    #[arg(long)]
    pool_size: Option<u32>,
    /// Vouch's `database.acquire_timeout_seconds` (its default otherwise).
    #[arg(long)]
    acquire_timeout_seconds: Option<u64>,
    /// Keep Vouch's stderr (its warnings) on this terminal.
    #[arg(long)]
    vouch_logs: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let original_nofile = raise_open_file_limit();
    // The sandboxes run on a runtime of their own, so the generator's timings are not
    // queued behind the sandbox's work (Vouch is another process altogether).
    let sandbox_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sandbox")
        .enable_all()
        .build()?;
    let (microsoft, sms) = sandbox_rt.block_on(async {
        anyhow::Ok((MicrosoftSandbox::start().await?, SmsSandbox::start().await?))
    })?;
    let generator = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = generator.block_on(run(args, microsoft, sms, original_nofile));
    drop(generator);
    drop(sandbox_rt);
    result
}

async fn run(
    args: Args,
    microsoft: MicrosoftSandbox,
    sms: SmsSandbox,
    nofile: Option<(u64, u64)>,
) -> anyhow::Result<()> {
    let binary = vouch_binary()?;
    let db = TestDatabase::create(args.database_url.as_deref()).await?;
    println!("binary:   {}", binary.display());
    println!("database: {}", db.describe());
    let world = Arc::new(World::set_up(&args, &binary, &db, &microsoft, &sms, nofile).await?);
    let outcome = match args.scenario {
        Scenario::Flows => flows(&args, &world).await,
        Scenario::Burst => burst(&args, &world).await,
        Scenario::Pending => pending(&args, &world).await,
        Scenario::TwoInstances => two_instances(&args, &world).await,
    };
    if let Ok(world) = Arc::try_unwrap(world) {
        world.stop();
    }
    db.drop_it().await;
    outcome
}

// ---------------------------------------------------------------------------------------
// The world: sandbox, database, Vouch processes, the MSP and its key.

struct World {
    microsoft: MicrosoftSandbox,
    sms: SmsSandbox,
    vouch: Vec<VouchProcess>,
    api_key: String,
    http: reqwest::Client,
    db_url: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    nofile: Option<(u64, u64)>,
    keep_logs: bool,
}

struct VouchProcess {
    child: Child,
    base: String,
}

impl World {
    async fn set_up(
        args: &Args,
        binary: &PathBuf,
        db: &TestDatabase,
        microsoft: &MicrosoftSandbox,
        sms: &SmsSandbox,
        nofile: Option<(u64, u64)>,
    ) -> anyhow::Result<World> {
        let key = vouch::store::crypto::MasterKey::generate_encoded();
        let (app_id, app_secret) = microsoft.vouch_app();
        let hold = args.hold_seconds.max(1);
        let mut env: Vec<(String, String)> = vec![
            ("VOUCH__DATABASE__URL".into(), db.url.clone()),
            (
                "VOUCH__ENCRYPTION__MASTER_KEY".into(),
                key.expose_secret().to_owned(),
            ),
            ("VOUCH__LOG__FILTER".into(), "warn".into()),
            ("VOUCH__MICROSOFT__LOGIN_URL".into(), microsoft.login_url()),
            ("VOUCH__MICROSOFT__GRAPH_URL".into(), microsoft.graph_url()),
            (
                "VOUCH__MICROSOFT__MFA_CONNECTOR_URL".into(),
                microsoft.mfa_connector_url(),
            ),
            ("VOUCH__MICROSOFT__APP_CLIENT_ID".into(), app_id),
            ("VOUCH__MICROSOFT__APP_CLIENT_SECRET".into(), app_secret),
            (
                "VOUCH__MICROSOFT__CONNECTOR_TIMEOUT_SECONDS".into(),
                (hold + 60).max(120).to_string(),
            ),
            ("VOUCH__SMS__API_URL".into(), sms.api_url()),
            ("VOUCH__SMS__ACCOUNT_SID".into(), sms.account_sid()),
            ("VOUCH__SMS__AUTH_TOKEN".into(), sms.auth_token()),
            ("VOUCH__SMS__FROM".into(), sms.from_number()),
        ];
        if let Some(size) = args.pool_size {
            env.push(("VOUCH__DATABASE__MAX_CONNECTIONS".into(), size.to_string()));
        }
        if let Some(seconds) = args.acquire_timeout_seconds {
            env.push((
                "VOUCH__DATABASE__ACQUIRE_TIMEOUT_SECONDS".into(),
                seconds.to_string(),
            ));
        }
        // The sandbox answers a push within its timeout: longer than any hold here.
        microsoft.set_push_timeout(Duration::from_secs(hold + 60));

        // The MSP and its admin key, as an operator makes them (the command line).
        let cli = |cmd: &[&str]| -> anyhow::Result<String> {
            let out = Command::new(binary)
                .args(cmd)
                .env_clear()
                .envs(env.iter().cloned())
                .stderr(Stdio::null())
                .output()?;
            anyhow::ensure!(out.status.success(), "vouch {cmd:?} failed");
            Ok(String::from_utf8(out.stdout)?.trim().to_owned())
        };
        cli(&["msp", "create", "--name", "Load test MSP"])?;
        let api_key = cli(&[
            "api-key",
            "create",
            "--msp",
            "Load test MSP",
            "--scope",
            "admin",
            "--name",
            "load harness",
        ])?;

        let mut world = World {
            microsoft: microsoft.clone(),
            sms: sms.clone(),
            vouch: Vec::new(),
            api_key,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(4096)
                // Idle connections close soon, so Vouch's open files after a scenario are
                // its own, not the harness's kept-alive ones.
                .pool_idle_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(120))
                .build()?,
            db_url: db.url.clone(),
            binary: binary.clone(),
            env,
            nofile,
            keep_logs: args.vouch_logs,
        };
        world.spawn_vouch().await?;
        if args.scenario == Scenario::TwoInstances {
            world.spawn_vouch().await?;
        }
        world.connect_tenant().await?;
        Ok(world)
    }

    /// Starts one more `vouch serve` on a free port and waits for `/readyz`.
    async fn spawn_vouch(&mut self) -> anyhow::Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .env_clear()
            .envs(self.env.iter().cloned())
            .env("VOUCH__HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("VOUCH__HTTP__PUBLIC_URL", format!("{base}/"))
            .stdout(Stdio::null())
            .stderr(if self.keep_logs {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        // Vouch gets the open-file limit a shell would give it, not the harness's raised one
        // (it raises its own at start-up).
        if let Some((soft, hard)) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs before exec.
            unsafe {
                command.pre_exec(move || {
                    let _ = nix::sys::resource::setrlimit(
                        nix::sys::resource::Resource::RLIMIT_NOFILE,
                        soft,
                        hard,
                    );
                    Ok(())
                });
            }
        }
        let child = command.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(format!("{base}/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "vouch serve did not become ready in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.vouch.push(VouchProcess { child, base });
        Ok(())
    }

    /// Connects the sandbox's demo tenant through the API (identity management with the
    /// customer's app, then Authenticator by the admin-consent redirect).
    async fn connect_tenant(&self) -> anyhow::Result<()> {
        let base = &self.vouch[0].base;
        let r = self
            .http
            .post(format!("{base}/api/v1/integrations/identity-management"))
            .bearer_auth(&self.api_key)
            .json(&serde_json::json!({
                "tenant_id": DEMO_TENANT_ID,
                "client_id": IDENTITY_APP_CLIENT_ID,
                "client_secret": IDENTITY_APP_SECRET,
            }))
            .send()
            .await?;
        anyhow::ensure!(
            r.status() == 201,
            "identity management: {}",
            r.text().await?
        );
        let r = self
            .http
            .post(format!("{base}/api/v1/integrations/authenticator/consent"))
            .bearer_auth(&self.api_key)
            .send()
            .await?;
        let link: serde_json::Value = r.json().await?;
        let url = url::Url::parse(link["url"].as_str().unwrap_or_default())?;
        let callback = self
            .microsoft
            .answer_admin_consent(
                &url,
                DEMO_TENANT_ID,
                "global_admin",
                ConsentDecision::Accept,
            )
            .await?;
        let page = self
            .http
            .get(format!(
                "{base}{}?{}",
                callback.path(),
                callback.query().unwrap_or("")
            ))
            .send()
            .await?;
        anyhow::ensure!(page.status() == 200, "the consent callback failed");
        Ok(())
    }

    fn api(&self, instance: usize, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!("{}/api/v1{path}", self.vouch[instance].base),
            )
            .bearer_auth(&self.api_key)
    }

    fn pid(&self, instance: usize) -> u32 {
        self.vouch[instance].child.id()
    }

    fn stop(mut self) {
        for process in &mut self.vouch {
            let _ = Command::new("kill")
                .arg(process.child.id().to_string())
                .status();
            let _ = process.child.wait();
        }
    }

    /// `count` users of the demo tenant named `{prefix}-{i}`, the mobile of user `i` being
    /// `phone(i)`; their UPNs.
    fn seed_users(
        &self,
        prefix: &str,
        count: usize,
        phone: impl Fn(usize) -> Option<String>,
    ) -> Vec<String> {
        let users: Vec<NewSandboxUser> = (0..count)
            .map(|i| NewSandboxUser {
                local_part: format!("{prefix}-{i:05}"),
                display_name: format!("Load User {i}"),
                mobile: phone(i),
            })
            .collect();
        self.microsoft.add_users(DEMO_TENANT_ID, &users)
    }
}

// ---------------------------------------------------------------------------------------
// Steps, timings and errors.

#[derive(Default)]
struct Tally {
    timings: HashMap<&'static str, Vec<f64>>,
    errors: HashMap<String, usize>,
}

impl Tally {
    fn time(&mut self, step: &'static str, since: Instant) {
        self.timings
            .entry(step)
            .or_default()
            .push(since.elapsed().as_secs_f64() * 1000.0);
    }

    fn error(&mut self, step: &str, what: String) {
        *self.errors.entry(format!("{step}: {what}")).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        for (step, mut samples) in other.timings {
            self.timings.entry(step).or_default().append(&mut samples);
        }
        for (what, n) in other.errors {
            *self.errors.entry(what).or_default() += n;
        }
    }

    fn print(&self, order: &[&str]) {
        for step in order {
            if let Some(samples) = self.timings.get(step) {
                let (p50, p99, max) = percentiles(samples);
                println!(
                    "  {step:<14} n {:>7}   p50 {p50:>8.1} ms   p99 {p99:>8.1} ms   max {max:>8.1} ms",
                    samples.len()
                );
            }
        }
        let total: usize = self.errors.values().sum();
        println!("  errors: {total}");
        let mut errors: Vec<_> = self.errors.iter().collect();
        errors.sort();
        for (what, n) in errors {
            println!("    {n:>6} x {what}");
        }
    }
}

fn percentiles(samples: &[f64]) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    (at(0.50), at(0.99), sorted[sorted.len() - 1])
}

/// The status and the error code (or the body's start) of a failed answer.
async fn failure(response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    format!("{status} {}", body["code"].as_str().unwrap_or("(no code)"))
}

async fn start_push(
    world: &World,
    instance: usize,
    upn: &str,
    ticket: &str,
) -> Result<serde_json::Value, String> {
    let response = world
        .api(instance, reqwest::Method::POST, "/verifications")
        .json(&serde_json::json!({
            "tenant_id": DEMO_TENANT_ID,
            "user": upn,
            "method": "push",
            "ticket": { "ticket_id": ticket },
        }))
        .send()
        .await
        .map_err(|e| format!("transport: {}", transport_kind(&e)))?;
    if response.status() != 202 {
        return Err(failure(response).await);
    }
    response.json().await.map_err(|e| e.to_string())
}

async fn reset(
    world: &World,
    instance: usize,
    upn: &str,
    verification: &str,
    key: &str,
) -> Result<serde_json::Value, String> {
    let response = world
        .api(instance, reqwest::Method::POST, "/password-resets")
        .header("Idempotency-Key", key)
        .json(&serde_json::json!({
            "tenant_id": DEMO_TENANT_ID,
            "user": upn,
            "verification_id": verification,
            "confirm": true,
        }))
        .send()
        .await
        .map_err(|e| format!("transport: {}", transport_kind(&e)))?;
    if response.status() != 201 {
        return Err(failure(response).await);
    }
    response.json().await.map_err(|e| e.to_string())
}

async fn wait_decided(
    world: &World,
    instance: usize,
    id: &str,
) -> Result<serde_json::Value, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let response = world
            .api(
                instance,
                reqwest::Method::GET,
                &format!("/verifications/{id}?wait_seconds=30"),
            )
            .send()
            .await
            .map_err(|e| format!("transport: {}", transport_kind(&e)))?;
        if response.status() != 200 {
            return Err(failure(response).await);
        }
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "pending" || Instant::now() > deadline {
            return Ok(body);
        }
    }
}

fn transport_kind(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else {
        "other"
    }
}

// ---------------------------------------------------------------------------------------
// flows

/// Fictional mobile numbers (the 555-0100 to 555-0199 range kept for fiction, in ten area
/// codes): one per technician, so the SMS with a technician's link is the latest to its
/// number.
fn drama_number(i: usize) -> String {
    const AREAS: [u16; 10] = [206, 425, 253, 360, 509, 212, 415, 312, 617, 303];
    let i = i % 1000;
    format!("+1 {} 555{:04}", AREAS[i / 100], 100 + i % 100)
}

fn e164(number: &str) -> String {
    number
        .chars()
        .filter(|c| *c == '+' || c.is_ascii_digit())
        .collect()
}

struct FlowRecord {
    ticket: String,
    started: bool,
    approved: bool,
    reset_id: Option<String>,
    revealed: bool,
}

async fn flows(args: &Args, world: &Arc<World>) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.technicians <= 1000,
        "at most 1000 technicians (one fictional mobile number each)"
    );
    let per = args.users_per_technician.max(1);
    let upns = world.seed_users("flow", args.technicians * per, |i| {
        Some(drama_number(i / per))
    });
    println!(
        "scenario: flows, {} technicians x {} users, {} s",
        args.technicians, per, args.seconds
    );
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..args.technicians {
        let users: Vec<String> = upns[t * per..(t + 1) * per].to_vec();
        let world = world.clone();
        tasks.push(tokio::spawn(async move {
            let world = &*world;
            let phone = e164(&drama_number(t));
            let mut tally = Tally::default();
            let mut records = Vec::new();
            let mut n = 0usize;
            while Instant::now() < deadline && n < 100_000 {
                let upn = &users[n % users.len()];
                let record =
                    one_flow(world, upn, &phone, &format!("load-{t}-{n}"), &mut tally).await;
                records.push(record);
                n += 1;
            }
            (tally, records)
        }));
    }
    let mut tally = Tally::default();
    let mut records = Vec::new();
    for task in tasks {
        let (t, mut r) = task.await?;
        tally.merge(t);
        records.append(&mut r);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let complete = records.iter().filter(|r| r.revealed).count();
    println!(
        "flows: {complete} complete of {} begun in {elapsed:.1} s: {:.1} flows/s ({:.1} per core of {})",
        records.len(),
        complete as f64 / elapsed,
        complete as f64 / elapsed / cores() as f64,
        cores()
    );
    tally.print(&[
        "start",
        "push_arrives",
        "decided",
        "reset",
        "share_page",
        "reveal",
        "flow",
    ]);
    check_audit(world, &records).await
}

async fn one_flow(
    world: &World,
    upn: &str,
    phone: &str,
    ticket: &str,
    tally: &mut Tally,
) -> FlowRecord {
    let mut record = FlowRecord {
        ticket: ticket.to_owned(),
        started: false,
        approved: false,
        reset_id: None,
        revealed: false,
    };
    let flow = Instant::now();
    let t = Instant::now();
    let verification = match start_push(world, 0, upn, ticket).await {
        Ok(v) => v,
        Err(e) => {
            tally.error("start", e);
            return record;
        }
    };
    tally.time("start", t);
    record.started = true;
    let id = verification["id"].as_str().unwrap_or_default().to_owned();
    // The phone: the push shows up in the sandbox, and the user approves it.
    let t = Instant::now();
    let Some(push) = world
        .microsoft
        .wait_for_push(upn, Duration::from_secs(30))
        .await
    else {
        tally.error("push_arrives", "no push within 30 s".into());
        return record;
    };
    tally.time("push_arrives", t);
    let t = Instant::now();
    world.microsoft.answer_push(&push.id, PushAnswer::Approve);
    match wait_decided(world, 0, &id).await {
        Ok(v) if v["status"] == "approved" => tally.time("decided", t),
        Ok(v) => {
            tally.error("decided", format!("{}", v["status"]));
            return record;
        }
        Err(e) => {
            tally.error("decided", e);
            return record;
        }
    }
    record.approved = true;
    let t = Instant::now();
    let done = match reset(world, 0, upn, &id, &uuid::Uuid::new_v4().to_string()).await {
        Ok(v) => v,
        Err(e) => {
            tally.error("reset", e);
            return record;
        }
    };
    tally.time("reset", t);
    record.reset_id = done["id"].as_str().map(str::to_owned);
    if done["status"] != "completed" {
        tally.error("reset", format!("status {}", done["status"]));
        return record;
    }
    // The user's SMS: the latest to this technician's number is this reset's.
    let Some(message) = world.sms.last_message_to(phone) else {
        tally.error("sms", "no message".into());
        return record;
    };
    let Some(link) = message
        .body
        .split_whitespace()
        .find(|w| w.starts_with("http") && w.contains("/s/"))
        .map(|w| w.trim_end_matches(['.', ',', ')']).to_owned())
    else {
        tally.error("sms", "no link in the message".into());
        return record;
    };
    let t = Instant::now();
    match world.http.get(&link).send().await {
        Ok(r) if r.status() == 200 => {
            let _ = r.bytes().await;
            tally.time("share_page", t);
        }
        Ok(r) => {
            tally.error("share_page", r.status().to_string());
            return record;
        }
        Err(e) => {
            tally.error("share_page", transport_kind(&e).into());
            return record;
        }
    }
    let t = Instant::now();
    let revealed = world
        .http
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await;
    match revealed {
        Ok(r) if r.status() == 200 => {
            let page = r.text().await.unwrap_or_default();
            tally.time("reveal", t);
            let password = world
                .microsoft
                .user_password(DEMO_TENANT_ID, upn)
                .map(|(p, _)| vouch::web::escape_html(&p));
            if password.is_some_and(|p| page.contains(&p)) {
                record.revealed = true;
                tally.time("flow", flow);
            } else {
                tally.error(
                    "reveal",
                    "the page does not show Microsoft's password".into(),
                );
            }
        }
        Ok(r) => tally.error("reveal", r.status().to_string()),
        Err(e) => tally.error("reveal", transport_kind(&e).into()),
    }
    record
}

/// Counts the audit rows of every flow's steps in the database, and compares them with the
/// steps the harness saw succeed.
async fn check_audit(world: &World, records: &[FlowRecord]) -> anyhow::Result<()> {
    use vouch::store::entities::{audit_event, password_reset};
    let db = Database::connect(&world.db_url).await?;
    let events = audit_event::Entity::find().all(&db).await?;
    let resets = password_reset::Entity::find().all(&db).await?;
    db.close().await.ok();
    let share_of: HashMap<String, String> = resets
        .iter()
        .filter_map(|r| Some((r.id.to_string(), r.share_id?.to_string())))
        .collect();
    let mut by_ticket: HashMap<(&str, &str), usize> = HashMap::new();
    let mut by_subject: HashMap<(&str, &str), usize> = HashMap::new();
    for e in &events {
        if let Some(ticket) = e.psa_ticket_id.as_deref() {
            *by_ticket.entry((ticket, e.action.as_str())).or_default() += 1;
        }
        if let Some(subject) = e.subject_id.as_deref() {
            *by_subject.entry((subject, e.action.as_str())).or_default() += 1;
        }
    }
    let (mut expected, mut missing, mut extra) = (0usize, 0usize, 0usize);
    let mut examples = Vec::new();
    let mut expect = |found: usize, what: String| {
        expected += 1;
        if found == 0 {
            missing += 1;
            if examples.len() < 5 {
                examples.push(format!("missing {what}"));
            }
        } else if found > 1 {
            extra += found - 1;
            if examples.len() < 5 {
                examples.push(format!("{found} x {what}"));
            }
        }
    };
    for r in records {
        let t = r.ticket.as_str();
        let count = |action: &str| by_ticket.get(&(t, action)).copied().unwrap_or(0);
        if r.started {
            expect(count("verification.push.start"), format!("{t} push.start"));
        }
        if r.approved {
            expect(
                count("verification.push.result"),
                format!("{t} push.result"),
            );
        }
        if r.reset_id.is_some() {
            expect(count("password.reset"), format!("{t} password.reset"));
        }
        if r.revealed {
            let share = r.reset_id.as_ref().and_then(|id| share_of.get(id));
            let found = share
                .and_then(|s| by_subject.get(&(s.as_str(), "share.revealed")))
                .copied()
                .unwrap_or(0);
            expect(found, format!("{t} share.revealed"));
        }
    }
    println!(
        "audit: {} rows; {expected} steps seen succeed, {missing} without their row, {extra} rows twice: {}",
        events.len(),
        if missing == 0 && extra == 0 {
            "the audit holds every event"
        } else {
            "INCOMPLETE"
        }
    );
    for e in examples {
        println!("    {e}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// burst

async fn burst(args: &Args, world: &Arc<World>) -> anyhow::Result<()> {
    let upns = world.seed_users("burst", args.starts, |_| None);
    // Every push is approved a second after it arrives, so they all settle.
    world.microsoft.set_push_hold(Some(PushHold {
        hold_for: Duration::from_secs(1),
        answer: Some(PushAnswer::Approve),
    }));
    println!("scenario: burst, {} starts at once", args.starts);
    let gate = Arc::new(tokio::sync::Barrier::new(upns.len() + 1));
    let mut tasks = Vec::new();
    for (i, upn) in upns.into_iter().enumerate() {
        let (gate, world) = (gate.clone(), world.clone());
        tasks.push(tokio::spawn(async move {
            let world = &*world;
            gate.wait().await;
            let t = Instant::now();
            let result = start_push(world, 0, &upn, &format!("burst-{i}")).await;
            (t.elapsed(), result)
        }));
    }
    let began = Instant::now();
    gate.wait().await;
    let mut tally = Tally::default();
    let mut ids = Vec::new();
    for task in tasks {
        let (elapsed, result) = task.await?;
        match result {
            Ok(v) => {
                tally
                    .timings
                    .entry("start")
                    .or_default()
                    .push(elapsed.as_secs_f64() * 1000.0);
                ids.push(v["id"].as_str().unwrap_or_default().to_owned());
            }
            Err(e) => tally.error("start", e),
        }
    }
    let all_in = began.elapsed().as_secs_f64();
    println!(
        "starts: {} answered 202 in {all_in:.2} s ({:.0} starts/s)",
        ids.len(),
        ids.len() as f64 / all_in
    );
    tally.print(&["start"]);
    let settled = settle(world, 0, &ids, Duration::from_secs(120)).await;
    println!(
        "settled: {} of {} verifications approved within 120 s of the burst",
        settled.get("approved").copied().unwrap_or(0),
        ids.len()
    );
    print_statuses(&settled);
    Ok(())
}

/// Reads every verification until none is pending (or `limit` passes): counts by status.
async fn settle(
    world: &World,
    instance: usize,
    ids: &[String],
    limit: Duration,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + limit;
    loop {
        use futures_util::StreamExt;
        let mut counts: HashMap<String, usize> = HashMap::new();
        // 64 reads in flight: reading the outcome must not be a burst of its own.
        let statuses: Vec<Option<String>> = futures_util::stream::iter(ids.iter())
            .map(|id| async move {
                let r = world
                    .api(
                        instance,
                        reqwest::Method::GET,
                        &format!("/verifications/{id}"),
                    )
                    .send()
                    .await
                    .ok()?;
                let v: serde_json::Value = r.json().await.ok()?;
                v["status"].as_str().map(str::to_owned)
            })
            .buffer_unordered(64)
            .collect()
            .await;
        for status in statuses {
            *counts
                .entry(status.unwrap_or_else(|| "unread".into()))
                .or_default() += 1;
        }
        if counts.get("pending").copied().unwrap_or(0) == 0 || Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_statuses(counts: &HashMap<String, usize>) {
    let mut list: Vec<_> = counts.iter().collect();
    list.sort();
    let text: Vec<String> = list.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!("  statuses: {}", text.join(", "));
}

// ---------------------------------------------------------------------------------------
// pending

async fn pending(args: &Args, world: &Arc<World>) -> anyhow::Result<()> {
    let upns = world.seed_users("pending", args.pending, |_| None);
    world.microsoft.set_push_hold(Some(PushHold {
        hold_for: Duration::from_secs(args.hold_seconds),
        answer: Some(PushAnswer::Approve),
    }));
    println!(
        "scenario: pending, {} pushes held {} s each, settle {} s",
        args.pending, args.hold_seconds, args.settle_seconds
    );
    let pid = world.pid(0);
    println!("vouch idle:        {}", process_figures(pid));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let ids = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let upns = Arc::new(upns);
    let began = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (tally, ids, next, upns) = (tally.clone(), ids.clone(), next.clone(), upns.clone());
        let world = world.clone();
        senders.push(tokio::spawn(async move {
            let world = &*world;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(upn) = upns.get(i) else { break };
                let t = Instant::now();
                let result = start_push(world, 0, upn, &format!("pending-{i}")).await;
                let mut tally = tally.lock().await;
                match result {
                    Ok(v) => {
                        tally.time("start", t);
                        ids.lock()
                            .await
                            .push(v["id"].as_str().unwrap_or_default().to_owned());
                    }
                    Err(e) => tally.error("start", e),
                }
            }
        }));
    }
    for s in senders {
        s.await?;
    }
    let sent_in = began.elapsed().as_secs_f64();
    let ids: Vec<String> = ids.lock().await.clone();
    println!(
        "sent: {} pushes in {sent_in:.1} s; the sandbox holds {}",
        ids.len(),
        world.microsoft.pending_count()
    );
    // While they wait: memory, open files, and status reads. Every push is held from its
    // arrival, so all of them wait at once from the last start until the first one's hold
    // ends.
    let hold_ends = began + Duration::from_secs(args.hold_seconds);
    if Instant::now() + Duration::from_secs(3) > hold_ends {
        println!(
            "  warning: sending took {sent_in:.1} s, nearly the hold of {} s: raise --hold-seconds to see them all pending at once",
            args.hold_seconds
        );
    }
    let readers_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ids = Arc::new(ids);
    let mut readers = Vec::new();
    for r in 0..args.readers.max(1) {
        let (tally, ids, stop) = (tally.clone(), ids.clone(), readers_stop.clone());
        let world = world.clone();
        readers.push(tokio::spawn(async move {
            let world = &*world;
            let mut i = r;
            let mut reads = 0usize;
            while !stop.load(Ordering::Relaxed) && !ids.is_empty() && reads < 1_000_000 {
                let id = &ids[i % ids.len()];
                i += 7919;
                reads += 1;
                let t = Instant::now();
                let result = world
                    .api(0, reqwest::Method::GET, &format!("/verifications/{id}"))
                    .send()
                    .await;
                let mut tally = tally.lock().await;
                match result {
                    Ok(resp) if resp.status() == 200 => {
                        let _ = resp.bytes().await;
                        tally.time("status_read", t)
                    }
                    Ok(resp) => tally.error("status_read", failure(resp).await),
                    Err(e) => tally.error("status_read", transport_kind(&e).into()),
                }
            }
        }));
    }
    let mut peak_rss = 0.0f64;
    let mut peak_fds = 0usize;
    while Instant::now() + Duration::from_millis(1500) < hold_ends {
        let (rss, fds) = (rss_mb(pid), open_fds(pid));
        peak_rss = peak_rss.max(rss);
        peak_fds = peak_fds.max(fds);
        println!(
            "  pending {:>6}   vouch RSS {rss:>7.1} MB   open files {fds:>6}",
            world.microsoft.pending_count()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    readers_stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await?;
    }
    println!(
        "while pending: peak RSS {peak_rss:.1} MB, peak open files {peak_fds}, {:.1} KB per pending push over idle",
        0.0f64.max(peak_rss * 1024.0 - idle_kb(pid)) / ids.len().max(1) as f64
    );
    let settled = settle(world, 0, &ids, Duration::from_secs(args.hold_seconds + 120)).await;
    println!("settled after {:.1} s:", began.elapsed().as_secs_f64());
    print_statuses(&settled);
    println!("vouch just settled: {}", process_figures(pid));
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    println!(
        "vouch {} s later:   {}",
        args.settle_seconds,
        process_figures(pid)
    );
    tally.lock().await.print(&["start", "status_read"]);
    Ok(())
}

/// Vouch's idle RSS is not kept; the figure "per push" uses the RSS before the pushes.
fn idle_kb(_pid: u32) -> f64 {
    IDLE_KB.load(Ordering::Relaxed) as f64
}

static IDLE_KB: AtomicUsize = AtomicUsize::new(0);

fn process_figures(pid: u32) -> String {
    let rss = rss_mb(pid);
    if IDLE_KB.load(Ordering::Relaxed) == 0 {
        IDLE_KB.store((rss * 1024.0) as usize, Ordering::Relaxed);
    }
    format!("RSS {rss:.1} MB, open files {}", open_fds(pid))
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// two-instances

async fn two_instances(_args: &Args, world: &Arc<World>) -> anyhow::Result<()> {
    anyhow::ensure!(
        world.db_url.starts_with("postgres"),
        "two-instances needs --database-url postgres://… (SQLite is one instance's)"
    );
    let upns = world.seed_users("two", 3, |i| Some(drama_number(i)));
    let (a, b) = (0usize, 1usize);
    println!(
        "scenario: two-instances: A {} and B {} on one PostgreSQL",
        world.vouch[a].base, world.vouch[b].base
    );
    let mut checks: Vec<(String, bool)> = Vec::new();
    let mut check = |name: &str, ok: bool, detail: String| {
        println!(
            "  {} {name}{}",
            if ok { "PASS" } else { "FAIL" },
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        );
        checks.push((name.to_owned(), ok));
    };

    // 1. Started on A, approved, reset on B; the same key on A gives the same reset.
    let upn = &upns[0];
    let approved = approved_on(world, a, upn, "two-1").await;
    let vid: Result<String, String> = approved
        .as_ref()
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .map_err(|e| e.clone());
    let key = uuid::Uuid::new_v4().to_string();
    let user_id = approved
        .as_ref()
        .map(|v| v["user_id"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let patches_before = world.microsoft.count(Service::Graph, "PATCH", &user_id);
    let on_b = match &vid {
        Ok(vid) => reset(world, b, upn, vid, &key).await,
        Err(e) => Err(e.clone()),
    };
    check(
        "a verification started on A is used for a reset on B",
        on_b.as_ref().is_ok_and(|r| r["status"] == "completed"),
        match &on_b {
            Ok(r) => format!("status {}", r["status"]),
            Err(e) => e.clone(),
        },
    );
    let on_a = match &vid {
        Ok(vid) => reset(world, a, upn, vid, &key).await,
        Err(e) => Err(e.clone()),
    };
    let same = matches!((&on_a, &on_b), (Ok(x), Ok(y)) if x["id"] == y["id"]);
    check(
        "the same Idempotency-Key on A returns B's reset",
        same,
        String::new(),
    );
    let patches = world.microsoft.count(Service::Graph, "PATCH", &user_id) - patches_before;
    check(
        "the password was changed once",
        patches == 1,
        format!("{patches} PATCH"),
    );
    // The same key sent to both at once: one reset, one change.
    let approved = approved_on(world, b, upn, "two-2").await;
    if let Ok(v) = approved {
        let vid = v["id"].as_str().unwrap_or_default().to_owned();
        let key = uuid::Uuid::new_v4().to_string();
        let before = world.microsoft.count(Service::Graph, "PATCH", &user_id);
        let (x, y) = tokio::join!(
            reset(world, a, upn, &vid, &key),
            reset(world, b, upn, &vid, &key)
        );
        let changed = world.microsoft.count(Service::Graph, "PATCH", &user_id) - before;
        let ids = (
            x.as_ref().map(|r| r["id"].clone()),
            y.as_ref().map(|r| r["id"].clone()),
        );
        check(
            "one key sent to A and B at once: one reset, one change",
            matches!(&ids, (Ok(p), Ok(q)) if p == q) && changed == 1,
            format!("A {}, B {}, {changed} PATCH", short(&x), short(&y)),
        );
        // A spent verification is refused on the other instance, under a new key.
        let again = reset(world, a, upn, &vid, &uuid::Uuid::new_v4().to_string()).await;
        check(
            "a verification spent on one instance is refused on the other",
            again
                .as_ref()
                .is_err_and(|e| e.contains("verification_used")),
            short(&again),
        );
    } else {
        check("second approval", false, format!("{approved:?}"));
    }

    // 2. Per-user limits across both: one push pending per user, and the push limit.
    let upn = &upns[1];
    let first = start_push(world, a, upn, "two-3").await;
    let arrived = world
        .microsoft
        .wait_for_push(upn, Duration::from_secs(30))
        .await;
    let second = start_push(world, b, upn, "two-4").await;
    check(
        "a push pending through A refuses a second through B",
        first.is_ok()
            && second
                .as_ref()
                .is_err_and(|e| e.contains("push_already_pending")),
        short(&second),
    );
    // Deny pushes alternately on A and B until one is refused for the limit.
    if let Some(push) = arrived {
        world.microsoft.answer_push(&push.id, PushAnswer::Deny);
    }
    if let Ok(v) = &first {
        let _ = wait_decided(world, a, v["id"].as_str().unwrap_or_default()).await;
    }
    let mut refused_at = None;
    for n in 0..6 {
        let instance = if n % 2 == 0 { b } else { a };
        match start_push(world, instance, upn, &format!("two-deny-{n}")).await {
            Ok(v) => {
                if let Some(push) = world
                    .microsoft
                    .wait_for_push(upn, Duration::from_secs(30))
                    .await
                {
                    world.microsoft.answer_push(&push.id, PushAnswer::Deny);
                }
                let _ = wait_decided(world, instance, v["id"].as_str().unwrap_or_default()).await;
            }
            Err(e) => {
                refused_at = Some((n + 2, e));
                break;
            }
        }
    }
    check(
        "the per-user push limit (3 unapproved per window by default) counts both instances",
        refused_at
            .as_ref()
            .is_some_and(|(n, e)| *n == 4 && e.contains("push_rate_limited")),
        match &refused_at {
            Some((n, e)) => format!("push {n} refused: {e}"),
            None => "never refused".into(),
        },
    );
    let passed = checks.iter().filter(|(_, ok)| *ok).count();
    println!("two-instances: {passed} of {} checks passed", checks.len());
    Ok(())
}

fn short(result: &Result<serde_json::Value, String>) -> String {
    match result {
        Ok(v) => format!("{} {}", v["id"], v["status"]),
        Err(e) => e.clone(),
    }
}

/// A push verification started on `instance`, approved on the phone.
async fn approved_on(
    world: &World,
    instance: usize,
    upn: &str,
    ticket: &str,
) -> Result<serde_json::Value, String> {
    let v = start_push(world, instance, upn, ticket).await?;
    let push = world
        .microsoft
        .wait_for_push(upn, Duration::from_secs(30))
        .await
        .ok_or("no push arrived")?;
    world.microsoft.answer_push(&push.id, PushAnswer::Approve);
    let done = wait_decided(world, instance, v["id"].as_str().unwrap_or_default()).await?;
    if done["status"] == "approved" {
        Ok(done)
    } else {
        Err(format!("status {}", done["status"]))
    }
}

// ---------------------------------------------------------------------------------------
// Process, database, limits.

fn vouch_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("VOUCH_BIN") {
        return Ok(PathBuf::from(path));
    }
    // target/<profile>/examples/load -> target/<profile>/vouch
    let exe = std::env::current_exe()?;
    let candidate = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("vouch"))
        .unwrap_or_default();
    anyhow::ensure!(
        candidate.exists(),
        "{} not found: run `cargo build --release --bin vouch` first (or set VOUCH_BIN)",
        candidate.display()
    );
    Ok(candidate)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Raises this process's open-file limit to its hard limit (the sandbox holds a socket per
/// pending push, the generator one per request in flight); the limits it had before.
fn raise_open_file_limit() -> Option<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    Some((soft, hard))
}

/// SQLite in a temporary directory, or a fresh PostgreSQL database beside the one named.
struct TestDatabase {
    url: String,
    _dir: Option<tempfile::TempDir>,
    admin: Option<(String, String)>,
}

impl TestDatabase {
    async fn create(admin_url: Option<&str>) -> anyhow::Result<TestDatabase> {
        let Some(admin_url) = admin_url else {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("vouch.db").display());
            return Ok(TestDatabase {
                url,
                _dir: Some(dir),
                admin: None,
            });
        };
        let name = format!("vouch_load_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await.ok();
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(TestDatabase {
            url: url.to_string(),
            _dir: None,
            admin: Some((admin_url.to_owned(), name)),
        })
    }

    fn describe(&self) -> String {
        vouch::config::redact_url_password(&self.url)
    }

    async fn drop_it(&self) {
        if let Some((admin_url, name)) = &self.admin
            && let Ok(admin) = Database::connect(admin_url.as_str()).await
        {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}
