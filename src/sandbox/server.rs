//! The one server skeleton the three fakes are built on: it binds a local port, keeps a fake's
//! state behind one mutex, records the requests, answers the injected faults, and decodes
//! what arrives (path segments, query and form pairs, credentials).
//!
//! Only what the fakes have in common lives here. Each fake keeps its own routes and wire
//! behaviour: which requests are recorded, which may be faulted, and how a fault is worded on
//! its wire (the SMS sandbox answers with Twilio error objects, for instance).
//!
//! Nothing holds a lock across an `.await`: the state and the traffic (log and faults) each
//! have their own [`std::sync::Mutex`], and no code path takes both at once.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use poem::http::{HeaderMap, Method, StatusCode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, Request, Response, Server};
use tokio::sync::Notify;

use super::plain;

/// How long a hanging fault holds its request: far longer than any client timeout.
pub(crate) const HANG_FOR: Duration = Duration::from_secs(3600);
/// Recorded requests kept (oldest dropped first), so a long demo does not grow without end.
const MAX_RECORDED_REQUESTS: usize = 10_000;

/// A failure to simulate on the next matching requests (Microsoft and PSA sandboxes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and body (sent as given; JSON content type when it starts with
    /// `{` or `[`), with a `Retry-After` header (seconds) when set.
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Never answer (the handler sleeps for an hour): for client timeouts.
    Hang,
    /// Carry the request out, then answer with the inner fault instead of the real answer:
    /// the answer was lost (a client timeout with [`Fault::Hang`], or a gateway's 5xx). Only
    /// the Microsoft sandbox carries a request out first; the others answer it with the inner
    /// fault without carrying it out.
    AfterHandling(Box<Fault>),
    /// Carry the request out as usual, answering only after this long: a slow upstream, so a
    /// test can see which requests were sent while this one was still unanswered. (As the
    /// lost answer of [`Fault::AfterHandling`] it stands for a 504 after the wait.)
    Delayed(Duration),
}

impl Fault {
    /// What the faulted request is answered with (after an hour, for [`Fault::Hang`]).
    pub(crate) async fn answer(self) -> Response {
        match self {
            Fault::Status {
                status,
                body,
                retry_after,
            } => status_response(status, body, retry_after),
            Fault::Hang => {
                tokio::time::sleep(HANG_FOR).await;
                plain(StatusCode::GATEWAY_TIMEOUT, "")
            }
            Fault::AfterHandling(lost) => Box::pin(lost.answer()).await,
            Fault::Delayed(wait) => {
                tokio::time::sleep(wait).await;
                plain(StatusCode::GATEWAY_TIMEOUT, "")
            }
        }
    }
}

/// An injected status: the body as given (JSON when it looks like JSON) and `Retry-After`
/// when set.
fn status_response(status: u16, body: String, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let trimmed = body.trim_start();
    let content_type = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut builder = Response::builder()
        .status(status)
        .content_type(content_type);
    if let Some(seconds) = retry_after {
        builder = builder.header("Retry-After", seconds.to_string());
    }
    builder.body(body)
}

/// One request as a sandbox received it; `K` says which of its services it was addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest<K> {
    /// The service (Microsoft) or PSA the request was addressed to.
    pub service: K,
    /// Upper case, e.g. `GET`.
    pub method: String,
    /// The full path, percent-decoded, without the query (e.g.
    /// `/graph/v1.0/users/dana@contoso.example`).
    pub path: String,
    /// The raw query string (empty when there is none).
    pub query: String,
    /// Whether an `Authorization` header was sent (never its value: it is a secret).
    pub authorization_present: bool,
    /// When it arrived (to tell requests sent at the same time from requests in sequence).
    pub received_at: std::time::Instant,
}

/// What a sandbox's handles and its server task share: where it listens, the fake's own state
/// (`S`), and the traffic: the request log (by service `K`) and the faults (`F`) to inject.
pub(crate) struct Shared<S, K = (), F = Fault> {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    base_url: String,
    state: Mutex<S>,
    traffic: Mutex<Traffic<K, F>>,
    /// Woken by [`Shared::notify_changed`], for [`Shared::wait_for`].
    changed: Notify,
}

/// The request log and the fault rules of one sandbox.
struct Traffic<K, F> {
    /// The latest requests, oldest first.
    requests: VecDeque<RecordedRequest<K>>,
    /// Every request recorded since the start (the log keeps only the latest).
    received: usize,
    /// Tried in the order they were injected; the first that matches is used.
    faults: Vec<FaultRule<K, F>>,
}

struct FaultRule<K, F> {
    service: K,
    /// Only requests of this method (upper case), or of any method when `None`.
    method: Option<String>,
    path_contains: String,
    fault: F,
    remaining: usize,
}

/// Binds `127.0.0.1:0` and serves `handler` on a tokio task, with `state` as the fake's state.
///
/// The task lives as long as the tokio runtime that called this (dropping the handles does
/// not stop it, so a demo can keep only the URLs). `name` says which sandbox in the log.
pub(crate) async fn start<S, K, F, H, Fut>(
    name: &'static str,
    state: S,
    handler: H,
) -> std::io::Result<Arc<Shared<S, K, F>>>
where
    S: Send + 'static,
    K: Send + 'static,
    F: Send + 'static,
    H: Fn(Arc<Shared<S, K, F>>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let port = acceptor
        .local_addr()
        .into_iter()
        .find_map(|addr| addr.as_socket_addr().map(|a| a.port()))
        .ok_or_else(|| std::io::Error::other(format!("the {name} sandbox has no address")))?;
    let shared = Arc::new(Shared {
        base_url: format!("http://127.0.0.1:{port}"),
        state: Mutex::new(state),
        traffic: Mutex::new(Traffic {
            requests: VecDeque::new(),
            received: 0,
            faults: Vec::new(),
        }),
        changed: Notify::new(),
    });
    let endpoint = SandboxEndpoint {
        shared: shared.clone(),
        handler,
    };
    tokio::spawn(async move {
        if let Err(err) = Server::new_with_acceptor(acceptor).run(endpoint).await {
            tracing::warn!(error = %err, "the {name} sandbox stopped");
        }
    });
    Ok(shared)
}

/// The single endpoint of a sandbox: hands every request to the fake's handler.
struct SandboxEndpoint<T, H> {
    shared: Arc<T>,
    handler: H,
}

impl<T, H, Fut> Endpoint for SandboxEndpoint<T, H>
where
    T: Send + Sync + 'static,
    H: Fn(Arc<T>, Request) -> Fut + Send + Sync,
    Fut: Future<Output = Response> + Send,
{
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        Ok((self.handler)(self.shared.clone(), req).await)
    }
}

impl<S, K, F> Shared<S, K, F> {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `127.0.0.1:PORT`, what a hosted service would call its host name.
    pub fn host(&self) -> &str {
        self.base_url
            .strip_prefix("http://")
            .unwrap_or(&self.base_url)
    }

    /// Locks the fake's state. A panic while locked cannot leave it half-written in a way
    /// that matters to a test double, so a poisoned lock is simply taken over.
    pub fn state(&self) -> MutexGuard<'_, S> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn traffic(&self) -> MutexGuard<'_, Traffic<K, F>> {
        self.traffic
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes the next `times` recorded, faultable requests to `service` whose decoded path
    /// contains `path_contains` fail with `fault` (an empty `path_contains` matches every
    /// path). Rules injected earlier are used up first.
    pub fn inject_fault(&self, service: K, path_contains: &str, fault: F, times: usize) {
        self.inject_fault_for(service, None, path_contains, fault, times);
    }

    /// Like [`Shared::inject_fault`], for requests of `method` only (when given).
    pub fn inject_fault_for(
        &self,
        service: K,
        method: Option<&str>,
        path_contains: &str,
        fault: F,
        times: usize,
    ) {
        if times == 0 {
            return;
        }
        self.traffic().faults.push(FaultRule {
            service,
            method: method.map(str::to_ascii_uppercase),
            path_contains: path_contains.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// Records `incoming` as addressed to `service` and, when it is `faultable`, uses up and
    /// returns the first fault injected for it. Faulted requests are recorded too.
    pub fn record(&self, incoming: &Incoming, service: K, faultable: bool) -> Option<F>
    where
        K: PartialEq,
        F: Clone,
    {
        let mut traffic = self.traffic();
        let fault = if faultable {
            traffic.take_fault(&service, incoming.method.as_str(), &incoming.path)
        } else {
            None
        };
        if traffic.requests.len() >= MAX_RECORDED_REQUESTS {
            traffic.requests.pop_front();
        }
        traffic.requests.push_back(RecordedRequest {
            service,
            method: incoming.method.as_str().to_owned(),
            path: incoming.path.clone(),
            query: incoming.raw_query.clone(),
            authorization_present: incoming.headers.contains_key("authorization"),
            received_at: std::time::Instant::now(),
        });
        traffic.received += 1;
        fault
    }

    /// Uses up and returns the first fault injected for a request that is not recorded on
    /// its own: one carried inside another (a Graph `$batch`'s inner requests), matched by
    /// its own method and decoded path.
    pub fn take_fault(&self, service: K, method: &str, path: &str) -> Option<F>
    where
        K: PartialEq,
        F: Clone,
    {
        self.traffic().take_fault(&service, method, path)
    }

    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest<K>>
    where
        K: Clone,
    {
        self.traffic().requests.iter().cloned().collect()
    }

    /// How many recorded requests went to `service` with `method` (case-insensitive) and a
    /// decoded path containing `path_contains`.
    pub fn count(&self, service: K, method: &str, path_contains: &str) -> usize
    where
        K: PartialEq,
    {
        self.traffic()
            .requests
            .iter()
            .filter(|r| {
                r.service == service
                    && r.method.eq_ignore_ascii_case(method)
                    && r.path.contains(path_contains)
            })
            .count()
    }

    /// How many requests were recorded since the start, whether or not the log still holds
    /// them.
    pub fn received(&self) -> usize {
        self.traffic().received
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.traffic().requests.clear();
    }

    /// Wakes every [`Shared::wait_for`]: call it after a change someone may wait on.
    pub fn notify_changed(&self) {
        self.changed.notify_waiters();
    }

    /// The first `Some` that `look` finds in the state, looking again after every
    /// [`Shared::notify_changed`] until `timeout` has passed (then one last time).
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        look: impl Fn(&S) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so a change in between is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let found = look(&self.state());
            if found.is_some() {
                return found;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return look(&self.state());
            }
        }
    }
}

impl<K: PartialEq, F: Clone> Traffic<K, F> {
    /// The fault for a request, if a rule matches (using up one of its `times`).
    fn take_fault(&mut self, service: &K, method: &str, path: &str) -> Option<F> {
        let index = self.faults.iter().position(|rule| {
            rule.service == *service
                && rule.method.as_deref().is_none_or(|m| m == method)
                && path.contains(&rule.path_contains)
        })?;
        let rule = &mut self.faults[index];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }
}

/// A request as every fake reads it: the path split into percent-decoded segments, the query
/// decoded as form pairs, the headers, and the body once [`Incoming::read_body`] has read it.
pub(crate) struct Incoming {
    pub method: Method,
    /// The decoded path segments, empty ones left out (`/graph/v1.0/users/dana%40contoso.example`
    /// -> `graph`, `v1.0`, `users`, `dana@contoso.example`). A fake serving several services
    /// under prefixes removes its prefix with [`Incoming::strip_prefix`] before routing.
    pub segments: Vec<String>,
    /// The whole decoded path as it was received (`/` and the segments), what is recorded and
    /// what faults match.
    pub path: String,
    /// The raw query string (empty when there is none).
    pub raw_query: String,
    /// The decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// Empty until [`Incoming::read_body`].
    pub body: Vec<u8>,
}

/// The request body was larger than the fake reads.
#[derive(Debug)]
pub(crate) struct BodyTooLarge;

impl Incoming {
    /// Decodes everything but the body, which stays unread in `req`.
    pub fn head(req: &Request) -> Incoming {
        let segments: Vec<String> = req
            .uri()
            .path()
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(decode_segment)
            .collect();
        let raw_query = req.uri().query().unwrap_or("").to_owned();
        Incoming {
            method: req.method().clone(),
            path: format!("/{}", segments.join("/")),
            segments,
            query: form_pairs(raw_query.as_bytes()),
            raw_query,
            headers: req.headers().clone(),
            body: Vec::new(),
        }
    }

    /// Reads the body of `req` (the request [`Incoming::head`] decoded), up to `limit` bytes.
    pub async fn read_body(&mut self, req: &mut Request, limit: usize) -> Result<(), BodyTooLarge> {
        let bytes = req
            .take_body()
            .into_bytes_limit(limit)
            .await
            .map_err(|_| BodyTooLarge)?;
        self.body = bytes.to_vec();
        Ok(())
    }

    /// Drops the first segment, the prefix that chose the service: handlers route on the rest
    /// (`/cw/ticket/1001` -> `ticket`, `1001`). [`Incoming::path`] stays whole.
    pub fn strip_prefix(&mut self) {
        if !self.segments.is_empty() {
            self.segments.remove(0);
        }
    }

    /// The segments as string slices, for matching on.
    pub fn segments(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        pair(&self.query, name)
    }

    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer` header, if it carries a non-empty one.
    pub fn bearer(&self) -> Option<&str> {
        let (scheme, token) = self.authorization()?;
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    /// The decoded `user:password` of an `Authorization: Basic` header (standard base64 of
    /// UTF-8), if it carries one.
    pub fn basic(&self) -> Option<String> {
        let (scheme, encoded) = self.authorization()?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        String::from_utf8(decoded).ok()
    }

    /// `(scheme, credentials)` of the `Authorization` header, both trimmed.
    fn authorization(&self) -> Option<(&str, &str)> {
        let (scheme, credentials) = self.header("authorization")?.trim().split_once(' ')?;
        Some((scheme, credentials.trim()))
    }

    /// Whether the body was declared as JSON (`application/json`, any parameters).
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
        })
    }

    /// The body as `application/x-www-form-urlencoded` pairs, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        form_pairs(&self.body)
    }

    /// The cookies sent (`Cookie` headers, `name=value; ...`), in order.
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| {
                let (name, value) = c.trim().split_once('=')?;
                Some((
                    name.trim().to_owned(),
                    value.trim().trim_matches('"').to_owned(),
                ))
            })
            .collect()
    }
}

/// Decodes the `%XX` escapes of one path segment: invalid escapes are kept as they are and
/// invalid UTF-8 is replaced, so `dana%40contoso.example` and `dana@contoso.example` are the
/// same, and no input panics. A `+` stays a `+` (it means a space only in forms).
pub(crate) fn decode_segment(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Decodes a query string or form body as `application/x-www-form-urlencoded` pairs, in
/// order (`+` is a space).
pub(crate) fn form_pairs(input: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(input).into_owned().collect()
}

/// The first value of `name` in decoded form, query or cookie pairs.
pub(crate) fn pair<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_segment_never_panics() {
        assert_eq!(
            decode_segment("dana%40contoso.example"),
            "dana@contoso.example"
        );
        assert_eq!(decode_segment("a%20b"), "a b");
        assert_eq!(decode_segment("a+b"), "a+b");
        assert_eq!(decode_segment("%ff%"), "\u{fffd}%");
        assert_eq!(decode_segment("%4"), "%4");
        assert_eq!(decode_segment("%%41%zz"), "%A%zz");
    }

    #[test]
    fn faults_match_in_order_and_are_used_up() {
        let mut traffic: Traffic<u8, &str> = Traffic {
            requests: VecDeque::new(),
            received: 0,
            faults: Vec::new(),
        };
        for (service, method, path_contains, fault, remaining) in [
            (1, Some("PATCH"), "/users", "patch", 1),
            (1, None, "/users", "first", 2),
            (1, None, "", "any", 1),
            (2, None, "", "other", 1),
        ] {
            traffic.faults.push(FaultRule {
                service,
                method: method.map(str::to_owned),
                path_contains: path_contains.to_owned(),
                fault,
                remaining,
            });
        }
        assert_eq!(
            traffic.take_fault(&1, "GET", "/graph/users/x"),
            Some("first")
        );
        assert_eq!(
            traffic.take_fault(&1, "PATCH", "/graph/users/x"),
            Some("patch")
        );
        assert_eq!(traffic.take_fault(&1, "GET", "/login/token"), Some("any"));
        assert_eq!(traffic.take_fault(&1, "GET", "/login/token"), None);
        assert_eq!(
            traffic.take_fault(&1, "PATCH", "/graph/users/y"),
            Some("first")
        );
        assert_eq!(traffic.take_fault(&1, "GET", "/graph/users/y"), None);
        assert_eq!(traffic.take_fault(&2, "GET", "/"), Some("other"));
        assert!(traffic.faults.is_empty());
    }
}
