//! The pods in a real browser: headless Chromium, driven from Rust over WebDriver
//! (chromedriver), on the sandbox ticket screens of the three PSAs.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
//! these tests say so and pass, unless `VOUCH_REQUIRE_BROWSER=1` (set by `.ci/run`), which
//! turns a missing browser into a failure.
//!
//! Each test runs in `in_browser`, which ends the WebDriver session and then kills and reaps
//! every chromedriver and Chromium process the test started, whether it passed or panicked:
//! a test run leaves no browser behind.

use crate::common;
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDb;
use common::world::World;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use vouch::domain::MspPolicy;
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, MicrosoftSandbox, PushScript};
use vouch::sandbox::psa as sbx;
use vouch::sandbox::sms::SmsFault;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const DANA_MOBILE: &str = "+12065550101";
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// One browser at a time: Chromium is heavy on a 2-core machine, and parallel sessions made
/// timings (a person answering a push) unrealistic.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `test` in a fresh headless Chromium, then ends the WebDriver session and kills
/// whatever is left of chromedriver and Chromium, whether `test` passed or panicked.
/// Without a browser (and none required) it says so and passes.
pub(crate) async fn in_browser(test: impl AsyncFnOnce(&Client)) {
    let Some(browser) = browser().await else {
        return;
    };
    let outcome = AssertUnwindSafe(test(&browser.client)).catch_unwind().await;
    browser.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

struct Browser {
    client: Client,
    processes: BrowserProcesses,
    // Declared last: the next test's browser starts only after this one is gone.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// Ends the WebDriver session, so that chromedriver quits Chromium the ordinary way, then
    /// kills what is left.
    async fn close(self) {
        match tokio::time::timeout(WAIT, self.client.clone().close()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("closing the WebDriver session failed: {err}"),
            Err(_) => eprintln!("closing the WebDriver session timed out"),
        }
        drop(self.processes);
    }
}

/// chromedriver and the Chromium it starts. Dropping this kills them all and reaps them, also
/// when a test panics or a session never opened.
struct BrowserProcesses {
    /// Leads a process group of its own, which Chromium's processes join.
    driver: Child,
    /// Chromium's profile and configuration directory: every Chromium process names it on its
    /// command line, including the crash handlers, which leave the process group.
    profile: tempfile::TempDir,
}

impl BrowserProcesses {
    fn start(port: u16) -> BrowserProcesses {
        // Chromium's crash handlers detach themselves, and its helpers outlive the browser
        // process by a moment. As their subreaper this process can reap them, rather than
        // leave zombies to an init that may reap them late.
        // SAFETY: prctl(2) with an integer argument; it only changes this process's flags.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
        let profile = tempfile::tempdir().unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // The crash handlers take their database path from here, so they too name the
            // profile (and nothing is written under the user's ~/.config).
            .env("XDG_CONFIG_HOME", profile.path())
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        BrowserProcesses { driver, profile }
    }
}

impl Drop for BrowserProcesses {
    fn drop(&mut self) {
        let group = self.driver.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group created above.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.driver.wait();
        let ours = browser_processes(group, self.profile.path());
        for &pid in &ours {
            // SAFETY: kill(2) on a process of this browser's group or naming its profile.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Killed processes end at once, but become ours to reap only when their parent has
        // ended too; the bound only guards against a process that never goes.
        let me = std::process::id() as libc::pid_t;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left = ours;
        while !left.is_empty() {
            left.retain(|&pid| match parent_of(pid) {
                None => false,
                Some(parent) if parent == me => {
                    // SAFETY: waitpid(2) on a child of this process, without blocking.
                    unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                    parent_of(pid).is_some()
                }
                Some(_) => true,
            });
            if Instant::now() > deadline {
                eprintln!("browser processes still running after the test: {left:?}");
                return;
            }
            if !left.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Processes (zombies included) in process group `group`, whose command line names `path` (a
/// directory unique to one browser), or that this process adopted as their subreaper: only
/// browsers start processes in this test binary, so every orphan is a browser's, such as a
/// crash handler that ended with its browser.
fn browser_processes(group: libc::pid_t, path: &Path) -> Vec<libc::pid_t> {
    let me = std::process::id() as libc::pid_t;
    let needle = path.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|&pid| {
            let in_group_or_adopted =
                proc_stat(pid).is_some_and(|(parent, pgid)| pgid == group || parent == me);
            in_group_or_adopted
                || std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
        })
        .collect()
}

/// The parent of `pid`, or `None` once it is gone (reaped).
fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    proc_stat(pid).map(|(parent, _)| parent)
}

/// `(parent, process group)` from `/proc/<pid>/stat`.
fn proc_stat(pid: libc::pid_t) -> Option<(libc::pid_t, libc::pid_t)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let _state = fields.next()?;
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// A headless Chromium session, or `None` (with a notice) when no browser is installed and
/// none is required.
async fn browser() -> Option<Browser> {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var("VOUCH_REQUIRE_BROWSER").is_err(),
            "VOUCH_REQUIRE_BROWSER is set but {CHROMIUM} / {CHROMEDRIVER} are missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("browser tests skipped: install chromium and chromium-driver to run them");
        return None;
    }
    let turn = ONE_AT_A_TIME.lock().await;
    // The WebDriver client brings a second TLS backend into this test binary; choose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = common::free_port();
    let processes = BrowserProcesses::start(port);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1200,1000",
                format!("--user-data-dir={}", processes.profile.path().display()),
            ],
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        match ClientBuilder::rustls()
            .expect("rustls client")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => break client,
            Err(err) => {
                assert!(
                    Instant::now() < deadline,
                    "chromedriver did not start: {err}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    Some(Browser {
        client,
        processes,
        _turn: turn,
    })
}

/// Where the browser tests save their screenshots: `screenshots/` in the target directory
/// (`CARGO_TARGET_DIR`, or `target/` beside the manifest), created if missing.
pub(crate) fn screenshots_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshots directory");
    dir
}

pub(crate) async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("{css} did not appear: {err}"))
}

/// Waits until `css` exists and `check` holds for it (polling: the pod updates itself).
pub(crate) async fn wait_until(
    client: &Client,
    css: &str,
    what: &str,
    check: impl Fn(&str, Option<String>) -> bool,
    attribute: &str,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            let text = element.text().await.unwrap_or_default();
            let attr = element.attr(attribute).await.unwrap_or(None);
            if check(&text, attr.clone()) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("{what}: {css} has text {text:?} and {attribute}={attr:?}");
            }
        } else if Instant::now() >= deadline {
            panic!("{what}: {css} never appeared");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn enter_pod(client: &Client) {
    client.enter_parent_frame().await.ok();
    let frame = wait_for(client, "#vouch-pod").await;
    frame.enter_frame().await.expect("enter the pod iframe");
    wait_for(client, "#vouch-reset").await;
}

pub(crate) async fn shield_state(client: &Client, state: &'static str) {
    wait_until(
        client,
        "#vouch-shield",
        &format!("shield {state}"),
        |_, attr| attr.as_deref() == Some(state),
        "data-state",
    )
    .await;
}

/// Opens the ticket screen, checks the disabled reset, verifies by push approved on the
/// sandbox phone, resets, reads the SMS, reveals the password and compares it with what
/// Microsoft received.
async fn full_flow(world: &World, client: &Client, screen_url: &str) {
    open_and_verify(world, client, screen_url).await;
    confirm_reset(client).await;
    wait_until(
        client,
        "#vouch-outcome",
        "reset outcome",
        |text, _| text.contains("Password reset"),
        "id",
    )
    .await;
    reveal_and_compare(world, client).await;
}

/// Opens the ticket screen, checks the disabled reset, and verifies Dana by a push that a
/// person approves on the sandbox phone.
async fn open_and_verify(world: &World, client: &Client, screen_url: &str) {
    client.goto(screen_url).await.unwrap();
    enter_pod(client).await;
    wait_until(
        client,
        "#vouch-contact-name",
        "contact shown",
        |text, _| text.contains("Dana Whitfield"),
        "id",
    )
    .await;

    // Reset is disabled until verified, with its hover text.
    let reset = client.find(Locator::Id("vouch-reset")).await.unwrap();
    assert!(
        reset.attr("disabled").await.unwrap().is_some(),
        "reset starts disabled"
    );
    let wrap = client.find(Locator::Id("vouch-reset-wrap")).await.unwrap();
    assert_eq!(
        wrap.attr("title").await.unwrap().as_deref(),
        Some("Verify the user's identity first")
    );

    // Push, approved by a person on the sandbox phone (another tab).
    wait_until(
        client,
        "#vouch-method-push",
        "push available",
        |_, disabled| disabled.is_none(),
        "disabled",
    )
    .await;
    client
        .find(Locator::Id("vouch-method-push"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shield_state(client, "pending").await;
    approve_on_phone(&world.microsoft, client).await;
    enter_pod(client).await;
    shield_state(client, "verified").await;
}

/// A person approves the pending push on the Microsoft sandbox's phone page, in a tab of its
/// own, which is then closed: the client is back on the window it was on (at its top frame).
pub(crate) async fn approve_on_phone(microsoft: &MicrosoftSandbox, client: &Client) {
    let pod_window = client.window().await.unwrap();
    let phone = client.new_window(true).await.unwrap();
    client.switch_to_window(phone.handle).await.unwrap();
    let deadline = Instant::now() + WAIT;
    let mut clicked = false;
    loop {
        // The phone page reloads itself every 2 s: a click can land on a page being replaced,
        // so look at the sandbox to know whether the answer arrived.
        if clicked && microsoft.pending_pushes().is_empty() {
            break;
        }
        client.goto(&microsoft.phone_url()).await.unwrap();
        if let Ok(approve) = client.find(Locator::Css("button[value=approve]")).await {
            clicked = approve.click().await.is_ok();
        }
        assert!(
            Instant::now() < deadline,
            "the push was never approved on the phone"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    client.close_window().await.unwrap();
    client.switch_to_window(pod_window).await.unwrap();
}

/// Resets, after confirming (the dialog names the user and the masked number). On the way it
/// checks that a double click on "Reset password" confirms nothing: the confirming button
/// is asleep when the dialog opens, and it is not where the Reset button was.
async fn confirm_reset(client: &Client) {
    wait_until(
        client,
        "#vouch-reset",
        "reset enabled",
        |_, disabled| disabled.is_none(),
        "disabled",
    )
    .await;
    // Both clicks of a double click, in one script so that no time passes between them.
    let second_click_confirmed_nothing = client
        .execute(
            "document.getElementById('vouch-reset').click();
             const go = document.getElementById('vouch-reset-go');
             go.click();
             return !document.getElementById('vouch-reset-confirm').hidden && go.disabled
                 && go.getAttribute('aria-busy') === null;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        second_click_confirmed_nothing,
        serde_json::json!(true),
        "a click right after the dialog opened must not confirm the reset"
    );
    let overlaps = client
        .execute(
            "const a = document.getElementById('vouch-reset').getBoundingClientRect();
             const b = document.getElementById('vouch-reset-go').getBoundingClientRect();
             return !(b.right <= a.left || b.left >= a.right || b.bottom <= a.top || b.top >= a.bottom);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overlaps,
        serde_json::json!(false),
        "the confirming button must not sit where the Reset button was"
    );
    enabled(client, "#vouch-reset-go").await;
    wait_until(
        client,
        "#vouch-reset-question",
        "confirmation names user and phone",
        |text, _| text.contains("dana@contoso.example") && text.contains("••01"),
        "id",
    )
    .await;
    client
        .find(Locator::Id("vouch-reset-go"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Reads the latest SMS to Dana, opens its link, reveals the password and compares it with
/// what Microsoft received.
async fn reveal_and_compare(world: &World, client: &Client) {
    let sms = world
        .sms
        .last_message_to(DANA_MOBILE)
        .expect("the secure link went to Dana's phone");
    let link = sms
        .body
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap()
        .trim_end_matches(['.', ')'])
        .to_owned();
    let path = url::Url::parse(&link).unwrap().path().to_owned();
    client.enter_parent_frame().await.ok();
    client.goto(&world.app.url(&path)).await.unwrap();
    let reveal = wait_for(client, "form button[type=submit]").await;
    reveal.click().await.unwrap();
    let secret = wait_for(client, "#secret").await;
    let shown = match secret.prop("value").await.unwrap() {
        Some(value) if !value.is_empty() => value,
        _ => secret.text().await.unwrap(),
    };
    let (password, _) = world
        .microsoft
        .user_password(DEMO_TENANT_ID, "dana@contoso.example")
        .expect("Microsoft received a new password");
    assert_eq!(
        shown.trim(),
        password,
        "the revealed password is the one Microsoft received"
    );
}

#[tokio::test]
async fn halopsa_pod_verify_reset_and_reveal() {
    in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = World::start(&db, MspPolicy::default()).await;
        full_flow(
            &world,
            client,
            &world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA),
        )
        .await;
    })
    .await;
}

/// The SMS with the link fails: the pod says so and sends the link again on one click.
#[tokio::test]
async fn a_link_whose_sms_failed_is_sent_again_from_the_pod() {
    in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = World::start(&db, MspPolicy::default()).await;
        open_and_verify(
            &world,
            client,
            &world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA),
        )
        .await;
        // Every attempt Vouch's SMS client makes is refused as unavailable.
        world.sms.inject_fault(
            SmsFault::Status {
                status: 503,
                code: 20503,
                message: "Service unavailable".into(),
                retry_after: None,
            },
            4,
        );
        confirm_reset(client).await;
        wait_until(
            client,
            "#vouch-outcome",
            "the SMS failure is said",
            |text, _| text.contains("could not be sent"),
            "id",
        )
        .await;
        assert!(world.sms.last_message_to(DANA_MOBILE).is_none());
        shown(client, "#vouch-resend-row").await;
        click(client, "vouch-resend").await;
        wait_until(
            client,
            "#vouch-outcome",
            "the link went again",
            |text, _| text.contains("sent again"),
            "id",
        )
        .await;
        reveal_and_compare(&world, client).await;
    })
    .await;
}

#[tokio::test]
async fn connectwise_pod_verify_reset_and_reveal() {
    in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = World::start(&db, MspPolicy::default()).await;
        full_flow(
            &world,
            client,
            &world
                .psa
                .connectwise()
                .ticket_screen_url(sbx::CW_TICKET_DANA),
        )
        .await;
    })
    .await;
}

/// Manage's events reach a pod that keeps listening after the handshake: the `onLoad` sent
/// once the member is known, and a `beforeSave` whenever the ticket is saved, each
/// acknowledged `{event, _id, result: "success"}`.
#[tokio::test]
async fn the_connectwise_pod_acknowledges_every_manage_event() {
    in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = World::start(&db, MspPolicy::default()).await;
        let screen = world
            .psa
            .connectwise()
            .ticket_screen_url(sbx::CW_TICKET_DANA);
        client.goto(&screen).await.unwrap();
        enter_pod(client).await;
        wait_until(
            client,
            "#vouch-contact-name",
            "the handshake is done",
            |text, _| text.contains("Dana Whitfield"),
            "id",
        )
        .await;
        client.enter_parent_frame().await.unwrap();
        let acknowledged = |expected: &'static str| {
            move |_: &str, attr: Option<String>| attr.as_deref() == Some(expected)
        };
        wait_until(
            client,
            "#hosted-api-log",
            "onLoad acknowledged",
            acknowledged("onLoad"),
            "data-acknowledged",
        )
        .await;
        click(client, "hosted-api-save").await;
        wait_until(
            client,
            "#hosted-api-log",
            "beforeSave acknowledged",
            acknowledged("onLoad,beforeSave"),
            "data-acknowledged",
        )
        .await;
        click(client, "hosted-api-save").await;
        wait_until(
            client,
            "#hosted-api-log",
            "every save acknowledged",
            acknowledged("onLoad,beforeSave,beforeSave"),
            "data-acknowledged",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn autotask_insight_verify_reset_and_reveal() {
    in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = World::start(&db, MspPolicy::default()).await;
        full_flow(
            &world,
            client,
            &world
                .psa
                .autotask()
                .ticket_screen_url(sbx::AUTOTASK_TICKET_DANA),
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn the_mismatch_shows_the_fix_and_a_denied_push_shows_denied() {
    in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = World::start(&db, MspPolicy::default()).await;

        client
            .goto(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_SAM))
            .await
            .unwrap();
        enter_pod(client).await;
        wait_until(
            client,
            "#vouch-method-push",
            "push button",
            |_, disabled| disabled.is_none(),
            "disabled",
        )
        .await;
        client
            .find(Locator::Id("vouch-method-push"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_until(
            client,
            "#vouch-error",
            "mismatch explained",
            |_, code| code.as_deref() == Some("preferred_method_mismatch"),
            "data-code",
        )
        .await;
        let message = client
            .find(Locator::Id("vouch-error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(message.contains("Entra admin center"), "{message}");
        let fix = client.find(Locator::Id("vouch-fix-default")).await.unwrap();
        assert!(fix.is_displayed().await.unwrap(), "the fix is offered");

        world
            .microsoft
            .script_push("dana@contoso.example", PushScript::Deny);
        client.enter_parent_frame().await.ok();
        client
            .goto(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA))
            .await
            .unwrap();
        enter_pod(client).await;
        wait_until(
            client,
            "#vouch-method-push",
            "push button",
            |_, disabled| disabled.is_none(),
            "disabled",
        )
        .await;
        client
            .find(Locator::Id("vouch-method-push"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        shield_state(client, "failed").await;
        wait_until(
            client,
            "#vouch-shield",
            "denied shown",
            |text, _| text.to_lowercase().contains("denied"),
            "id",
        )
        .await;
    })
    .await;
}

pub(crate) async fn click(client: &Client, id: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

pub(crate) async fn attribute(client: &Client, id: &str, name: &str) -> Option<String> {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .attr(name)
        .await
        .unwrap()
}

pub(crate) async fn text_of(client: &Client, id: &str) -> String {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub(crate) async fn enabled(client: &Client, css: &str) {
    wait_until(client, css, "enabled", |_, d| d.is_none(), "disabled").await;
}

pub(crate) async fn shown(client: &Client, css: &str) {
    wait_until(client, css, "shown", |_, h| h.is_none(), "hidden").await;
}

async fn error_code(client: &Client, code: &'static str) {
    wait_until(
        client,
        "#vouch-error",
        code,
        |_, c| c.as_deref() == Some(code),
        "data-code",
    )
    .await;
}

/// Every action besides the push and the reset: cancelling, the SMS code (badly typed,
/// wrong, right), the reset dialog's Escape, "Verify someone else" without a reason, and
/// making the push the default before pushing again.
#[tokio::test]
async fn cancel_code_someone_else_and_the_default_fix() {
    in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = World::start(&db, MspPolicy::default()).await;
        client
            .goto(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA))
            .await
            .unwrap();
        enter_pod(client).await;

        // A push nobody answers, cancelled.
        world
            .microsoft
            .script_push("dana@contoso.example", PushScript::NeverAnswer);
        enabled(client, "#vouch-method-push").await;
        click(client, "vouch-method-push").await;
        shield_state(client, "pending").await;
        assert!(
            attribute(client, "vouch-method-sms_code", "disabled")
                .await
                .is_some(),
            "no second method while one is pending"
        );
        shown(client, "#vouch-cancel").await;
        click(client, "vouch-cancel").await;
        shield_state(client, "not_verified").await;
        wait_until(
            client,
            "#vouch-history",
            "the cancelled push listed",
            |text, _| text.contains("Cancelled"),
            "id",
        )
        .await;

        // An SMS code: too short, then wrong, then right.
        enabled(client, "#vouch-method-sms_code").await;
        click(client, "vouch-method-sms_code").await;
        shield_state(client, "pending").await;
        shown(client, "#vouch-code").await;
        assert_eq!(
            text_of(client, "vouch-code-label").await,
            "Code Dana reads out"
        );
        let input = client.find(Locator::Id("vouch-code-input")).await.unwrap();
        input.send_keys("12a").await.unwrap();
        click(client, "vouch-code-submit").await;
        error_code(client, "code_format").await;
        assert_eq!(
            attribute(client, "vouch-code-input", "aria-invalid")
                .await
                .as_deref(),
            Some("true")
        );
        input.send_keys("3456").await.unwrap();
        assert_eq!(
            attribute(client, "vouch-code-input", "aria-invalid").await,
            None
        );
        click(client, "vouch-code-submit").await;
        error_code(client, "code_incorrect").await;
        let sms = world.sms.last_message_to(DANA_MOBILE).unwrap().body;
        let code = sms
            .split(|c: char| !c.is_ascii_digit())
            .find(|digits| digits.len() == 6)
            .expect("the SMS carries the code")
            .to_owned();
        input.clear().await.unwrap();
        input.send_keys(&code).await.unwrap();
        click(client, "vouch-code-submit").await;
        shield_state(client, "verified").await;
        wait_until(
            client,
            "#vouch-error",
            "the error cleared",
            |_, h| h.is_some(),
            "hidden",
        )
        .await;

        // The reset dialog closes with Escape.
        enabled(client, "#vouch-reset").await;
        click(client, "vouch-reset").await;
        shown(client, "#vouch-reset-confirm").await;
        let escape = "\u{e00c}";
        client
            .active_element()
            .await
            .unwrap()
            .send_keys(escape)
            .await
            .unwrap();
        wait_until(
            client,
            "#vouch-reset-confirm",
            "dialog closed",
            |_, h| h.is_some(),
            "hidden",
        )
        .await;

        // Someone else, without a reason: flagged next to the field, cleared by typing.
        client
            .find(Locator::Css("#vouch-other summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        client
            .find(Locator::Id("vouch-other-email"))
            .await
            .unwrap()
            .send_keys("sam@contoso.example")
            .await
            .unwrap();
        enabled(client, "#vouch-method-push").await;
        click(client, "vouch-method-push").await;
        error_code(client, "reason_required").await;
        assert_eq!(
            attribute(client, "vouch-other-reason", "aria-describedby")
                .await
                .as_deref(),
            Some("vouch-other-error")
        );
        client
            .find(Locator::Id("vouch-other-reason"))
            .await
            .unwrap()
            .send_keys("manager")
            .await
            .unwrap();
        assert_eq!(
            attribute(client, "vouch-other-reason", "aria-invalid").await,
            None
        );

        // Sam's default is not the push: make it the default, then push again.
        client.enter_parent_frame().await.ok();
        client
            .goto(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_SAM))
            .await
            .unwrap();
        enter_pod(client).await;
        enabled(client, "#vouch-method-push").await;
        click(client, "vouch-method-push").await;
        error_code(client, "preferred_method_mismatch").await;
        click(client, "vouch-fix-default").await;
        shown(client, "#vouch-fix-confirm").await;
        assert!(
            text_of(client, "vouch-fix-question")
                .await
                .contains("Sam's default sign-in method"),
        );
        click(client, "vouch-fix-default-yes").await;
        shown(client, "#vouch-notice").await;
        assert!(
            text_of(client, "vouch-notice")
                .await
                .contains("Authenticator is now Sam's default sign-in method."),
        );
        click(client, "vouch-fix-push").await;
        shield_state(client, "pending").await;
    })
    .await;
}

/// What the pod says before anything is sent, the fix offered from it, SMS offered for a
/// user without Authenticator, and someone else verified by SMS reset from their own button.
#[tokio::test]
async fn checks_sms_instead_and_someone_else_reset_in_the_pod() {
    in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = World::start(&db, MspPolicy::default()).await;

        // Noel has neither an Authenticator nor a mobile: said on load.
        client
            .goto(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_NOEL))
            .await
            .unwrap();
        enter_pod(client).await;
        shown(client, "#vouch-checks").await;
        let checks = text_of(client, "vouch-checks").await;
        assert!(
            checks.contains("no Microsoft Authenticator app registered"),
            "{checks}"
        );
        assert!(checks.contains("no mobile phone registered"), "{checks}");

        // Sam's default is SMS: fixed from the check, before any push is sent.
        client.enter_parent_frame().await.ok();
        client
            .goto(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_SAM))
            .await
            .unwrap();
        enter_pod(client).await;
        shown(client, "#vouch-checks").await;
        client
            .find(Locator::Css("#vouch-checks button[data-fix-token]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        shown(client, "#vouch-fix-confirm").await;
        click(client, "vouch-fix-default-yes").await;
        shown(client, "#vouch-notice").await;
        wait_until(
            client,
            "#vouch-checks",
            "the fixed check is gone",
            |_, hidden| hidden.is_some(),
            "hidden",
        )
        .await;
        assert_eq!(
            world
                .microsoft
                .count(vouch::sandbox::microsoft::Service::Mfa, "POST", ""),
            0,
            "no push was sent"
        );

        // Dana without an Authenticator: told so, and one click texts her a code instead.
        world
            .microsoft
            .remove_authenticator(DEMO_TENANT_ID, "dana@contoso.example");
        world
            .microsoft
            .set_user_sign_in_preference(DEMO_TENANT_ID, "dana@contoso.example", "sms");
        client.enter_parent_frame().await.ok();
        client
            .goto(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA))
            .await
            .unwrap();
        enter_pod(client).await;
        client
            .execute(
                "document.getElementById('vouch-method-push').disabled = false;",
                vec![],
            )
            .await
            .unwrap();
        click(client, "vouch-method-push").await;
        error_code(client, "authenticator_not_registered").await;
        assert!(
            attribute(client, "vouch-retry", "hidden").await.is_some(),
            "no Try again where trying again cannot help"
        );
        shown(client, "#vouch-use-sms").await;
        click(client, "vouch-use-sms").await;
        shield_state(client, "pending").await;
        shown(client, "#vouch-code").await;
        click(client, "vouch-cancel").await;
        shield_state(client, "not_verified").await;

        // Lee, verified by SMS from Dana's ticket (with a reason): listed with a Reset of
        // their own, which resets Lee and no one else.
        client
            .find(Locator::Css("#vouch-other summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        client
            .find(Locator::Id("vouch-other-email"))
            .await
            .unwrap()
            .send_keys("lee@contoso.example")
            .await
            .unwrap();
        client
            .find(Locator::Id("vouch-other-reason"))
            .await
            .unwrap()
            .send_keys("manager approval")
            .await
            .unwrap();
        enabled(client, "#vouch-method-sms_code").await;
        click(client, "vouch-method-sms_code").await;
        shown(client, "#vouch-code").await;
        let sms = world.sms.last_message_to("+12065550106").unwrap().body;
        let code = sms
            .split(|c: char| !c.is_ascii_digit())
            .find(|digits| digits.len() == 6)
            .expect("the SMS carries the code")
            .to_owned();
        client
            .find(Locator::Id("vouch-code-input"))
            .await
            .unwrap()
            .send_keys(&code)
            .await
            .unwrap();
        click(client, "vouch-code-submit").await;
        shown(client, "#vouch-others").await;
        let others = text_of(client, "vouch-others").await;
        assert!(
            others.contains("lee@contoso.example") && others.contains("manager approval"),
            "{others}"
        );
        enabled(client, "#vouch-others button[data-verification]").await;
        client
            .find(Locator::Css("#vouch-others button[data-verification]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_until(
            client,
            "#vouch-reset-question",
            "the confirmation names Lee",
            |text, _| text.contains("lee@contoso.example") && text.contains("••06"),
            "id",
        )
        .await;
        enabled(client, "#vouch-reset-go").await;
        click(client, "vouch-reset-go").await;
        wait_until(
            client,
            "#vouch-outcome",
            "reset outcome",
            |text, _| {
                // The link's end carries its day and how far it is.
                text.contains("Password reset")
                    && text.contains("tomorrow, ")
                    && text.contains("(24 h)")
            },
            "id",
        )
        .await;
        assert!(
            world
                .microsoft
                .user_password(DEMO_TENANT_ID, "lee@contoso.example")
                .is_some()
        );
        assert!(
            world
                .microsoft
                .user_password(DEMO_TENANT_ID, "dana@contoso.example")
                .is_none()
        );

        // Lee says "It's not me" to a push on their own ticket: the strongest warning.
        world
            .microsoft
            .script_push("lee@contoso.example", PushScript::ReportFraud);
        client.enter_parent_frame().await.ok();
        client
            .goto(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_LEE))
            .await
            .unwrap();
        enter_pod(client).await;
        assert!(attribute(client, "vouch-fraud", "hidden").await.is_some());
        enabled(client, "#vouch-method-push").await;
        click(client, "vouch-method-push").await;
        shield_state(client, "failed").await;
        shown(client, "#vouch-fraud").await;
        let warning = text_of(client, "vouch-fraud").await;
        assert!(
            warning.contains("reported a verification request as fraud")
                && warning.contains("held until"),
            "{warning}"
        );
    })
    .await;
}
