//! Calls to upstream services (Microsoft, PSAs, SMS): one `reqwest::Client` per service with
//! timeouts and a User-Agent, bounded retries, and metrics by service and outcome.
//!
//! Retry rules: 429 and 503 honour `Retry-After`, bounded in count and in total waiting time;
//! idempotent requests also retry transient network errors with backoff; timeouts are not
//! retried (the caller already waited the whole timeout); nothing retries without bound.

use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, Response, StatusCode};

use crate::telemetry::{Metrics, UpstreamOutcome};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after a 429/503 (so at most `1 + max_retries` attempts).
    pub max_retries: u32,
    /// The most time spent waiting between attempts, in total.
    pub max_total_wait: Duration,
    /// Backoff for network errors and for 429/503 without `Retry-After`, doubled each time.
    pub base_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            max_total_wait: Duration::from_secs(20),
            base_backoff: Duration::from_millis(200),
        }
    }
}

/// The request never got an HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    TimedOut,
    /// Vouch itself had no file descriptor left for the socket (EMFILE, or ENFILE for the
    /// whole system): nothing was sent, and the upstream is not at fault.
    TooManyOpenFiles,
    /// Connection refused, DNS failure, reset... (the detail is for the log).
    Network(String),
    /// The TLS handshake failed: a certificate not trusted, expired or for another name, or
    /// an address that does not speak TLS (the detail, rustls's, is for the log). Not
    /// retried: the same handshake fails the same way.
    Tls(String),
}

#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    service: &'static str,
    metrics: Metrics,
    policy: RetryPolicy,
}

/// Whether a request may be sent twice without harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    Idempotent,
    /// Only retried when the server said it did not process it (429/503).
    NotIdempotent,
}

impl Upstream {
    pub fn new(
        service: &'static str,
        timeout: Duration,
        metrics: Metrics,
        policy: RetryPolicy,
    ) -> Upstream {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .user_agent(concat!("Vouch/", env!("CARGO_PKG_VERSION")))
            // Bearer tokens must never follow a redirect to somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client with static settings");
        Upstream {
            client,
            service,
            metrics,
            policy,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The retry rules of this service's calls (a Graph `$batch` applies them to the answers
    /// inside it too).
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Sends the request built by `build` (called once per attempt) and returns the final
    /// HTTP answer, whatever its status, so the caller can read Microsoft's error body.
    pub async fn send(
        &self,
        idempotency: Idempotency,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, TransportError> {
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            let started = Instant::now();
            let result = build(&self.client).send().await;
            let elapsed = started.elapsed().as_secs_f64();
            match result {
                Ok(response) => {
                    let status = response.status();
                    self.metrics
                        .observe_upstream(self.service, outcome_of(status), elapsed);
                    if matches!(
                        status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) && attempt < self.policy.max_retries
                    {
                        let wait = retry_after(&response)
                            .unwrap_or_else(|| self.policy.base_backoff * 2u32.pow(attempt));
                        if waited + wait <= self.policy.max_total_wait {
                            tracing::info!(
                                service = self.service,
                                status = status.as_u16(),
                                wait_ms = wait.as_millis() as u64,
                                "upstream asked us to wait; retrying"
                            );
                            tokio::time::sleep(wait).await;
                            waited += wait;
                            attempt += 1;
                            continue;
                        }
                    }
                    return Ok(response);
                }
                Err(err) => {
                    if is_too_many_open_files(&err) {
                        self.metrics.observe_upstream(
                            self.service,
                            UpstreamOutcome::NetworkError,
                            elapsed,
                        );
                        // Not retried: a retry needs a descriptor as much as the first try did,
                        // and the operator must hear of this now, not after the backoff.
                        tracing::error!(
                            service = self.service,
                            open_file_limit = ?crate::server::open_file_limit(),
                            "{TOO_MANY_OPEN_FILES_LOG}"
                        );
                        return Err(TransportError::TooManyOpenFiles);
                    }
                    let timed_out = err.is_timeout();
                    let outcome = if timed_out {
                        UpstreamOutcome::Timeout
                    } else {
                        UpstreamOutcome::NetworkError
                    };
                    self.metrics
                        .observe_upstream(self.service, outcome, elapsed);
                    if timed_out {
                        return Err(TransportError::TimedOut);
                    }
                    if is_tls_failure(&err) {
                        return Err(TransportError::Tls(chain(&err.without_url())));
                    }
                    let wait = self.policy.base_backoff * 2u32.pow(attempt);
                    if idempotency == Idempotency::Idempotent
                        && attempt < self.policy.max_retries
                        && waited + wait <= self.policy.max_total_wait
                    {
                        tokio::time::sleep(wait).await;
                        waited += wait;
                        attempt += 1;
                        continue;
                    }
                    // Without the URL: it may carry identifiers we do not want in logs.
                    return Err(TransportError::Network(chain(&err.without_url())));
                }
            }
        }
    }
}

/// What the log says when a socket could not be opened for want of file descriptors.
const TOO_MANY_OPEN_FILES_LOG: &str = "too many open files (EMFILE): Vouch has used up its open-file limit and could not open a socket; raise the limit (`ulimit -n`, LimitNOFILE= in a systemd unit, --ulimit nofile= for Docker)";

/// What the person is told when a call failed for want of file descriptors (each service's
/// error uses it, under [`crate::domain::ErrorCode::TooManyOpenFiles`]).
pub const TOO_MANY_OPEN_FILES_MESSAGE: &str = "Vouch has run out of open files (too many open files) and could not open a connection. This is Vouch's own limit, not the other service's: its administrator must raise Vouch's open-file limit (ulimit -n, or LimitNOFILE= for systemd) and restart it. Try again in a minute.";

/// Whether `err`, or any error it was caused by, is the operating system refusing a new file
/// descriptor. reqwest reports it as a connect error whose cause is the `io::Error`.
pub fn is_too_many_open_files(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(is_descriptor_exhaustion)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// `err` and every error it was caused by, joined with `: ` (for the log).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        text.push_str(": ");
        text.push_str(&e.to_string());
        current = e.source();
    }
    text
}

/// Whether `err`, or any error it was caused by, is a failed TLS handshake: rustls refusing it
/// (a bad certificate, a peer that answers something other than TLS) or the peer hanging up
/// in the middle of it. reqwest reports it as a connect error whose cause is an `io::Error`
/// carrying the `rustls::Error` (or tokio-rustls's "tls handshake eof").
pub fn is_tls_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if is_tls_error(e) || TLS_PHRASES.iter().any(|p| e.to_string().contains(p)) {
            return true;
        }
        current = e.source();
    }
    false
}

/// How rustls words its handshake errors (`rustls::Error`'s Display), for when the error
/// reached us as text only (reqwest's connector passes some on without their type).
const TLS_PHRASES: &[&str] = &[
    "received corrupt message",
    "invalid peer certificate",
    "peer is incompatible",
    "peer misbehaved",
    "received fatal alert",
    "peer sent no certificates",
    "tls handshake eof",
];

/// A `rustls::Error`, or an `io::Error` carrying one (or tokio-rustls's own words for a peer
/// that hung up mid-handshake).
fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    e.downcast_ref::<std::io::Error>().is_some_and(|io| {
        io.get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            || (io.kind() == std::io::ErrorKind::UnexpectedEof
                && io.to_string().contains("tls handshake"))
    })
}

#[cfg(unix)]
fn is_descriptor_exhaustion(err: &std::io::Error) -> bool {
    use nix::errno::Errno;
    err.raw_os_error()
        .is_some_and(|code| code == Errno::EMFILE as i32 || code == Errno::ENFILE as i32)
}

#[cfg(not(unix))]
fn is_descriptor_exhaustion(_: &std::io::Error) -> bool {
    false
}

fn outcome_of(status: StatusCode) -> UpstreamOutcome {
    if status == StatusCode::TOO_MANY_REQUESTS {
        UpstreamOutcome::Throttled
    } else if status.is_server_error() {
        UpstreamOutcome::ServerError
    } else if status.is_client_error() {
        UpstreamOutcome::ClientError
    } else {
        UpstreamOutcome::Success
    }
}

/// `Retry-After` in seconds (the form Microsoft uses); an HTTP date is not expected.
pub fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like reqwest's connect error: the `io::Error` a few causes down.
    #[derive(Debug)]
    struct Wrapped(&'static str, Box<dyn std::error::Error + Send + Sync>);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.1)
        }
    }

    #[cfg(unix)]
    #[test]
    fn running_out_of_descriptors_is_told_apart_from_a_network_failure() {
        use nix::errno::Errno;
        for errno in [Errno::EMFILE, Errno::ENFILE] {
            let io = std::io::Error::from_raw_os_error(errno as i32);
            let chain = Wrapped(
                "error sending request",
                Box::new(Wrapped("client error (Connect)", Box::new(io))),
            );
            assert!(is_too_many_open_files(&chain), "{errno}");
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let chain = Wrapped("error sending request", Box::new(refused));
        assert!(!is_too_many_open_files(&chain));
        assert!(TOO_MANY_OPEN_FILES_MESSAGE.contains("too many open files"));
    }

    /// A real EMFILE from the operating system is recognised too, as `io::Error` reports it.
    #[cfg(unix)]
    #[test]
    fn the_operating_systems_own_error_is_recognised() {
        let io = std::io::Error::from_raw_os_error(nix::errno::Errno::EMFILE as i32);
        assert!(
            io.to_string()
                .to_lowercase()
                .contains("too many open files")
        );
        assert!(is_too_many_open_files(&io));
    }
}
