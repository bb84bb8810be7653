//! App-only tokens by client credentials: the v2 endpoint (scope `<graph>/.default`) for
//! Graph, the v1 endpoint (`resource`) for the MFA connector.
//!
//! Tokens are cached with moka per (tenant, client, secret fingerprint, audience) and renewed
//! before they expire (or after `cache.microsoft_tokens.ttl_seconds`, if that is sooner).
//! `try_get_with` makes the cache single-flight: many concurrent requests for the same token
//! make one upstream call and share its result (or its error, which is not cached).

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use super::error::{MicrosoftError, MicrosoftErrorKind};
use super::types::ClientCredentials;
use crate::cache::{KeepFor, renewal_horizon};
use crate::config::{CacheLimits, MicrosoftEndpoints};
use crate::upstream::{Idempotency, TransportError, Upstream};

/// Which API a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    Graph,
    MfaConnector,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    tenant: String,
    client_id: String,
    /// A different secret for the same app must not reuse a token obtained with the old one:
    /// otherwise a wrong secret would appear to work while an old token is cached.
    secret_fingerprint: [u8; 32],
    audience: Audience,
}

#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    /// How long the cache keeps it: renewal happens this long before Microsoft's expiry.
    keep_for: Duration,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("keep_for", &self.keep_for)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.value.expose_secret())
    }
}

impl KeepFor for AccessToken {
    fn keep_for(&self) -> Option<Duration> {
        Some(self.keep_for)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// v2 sends a number, v1 a string of digits.
    expires_in: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct TokenErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_codes: Vec<u64>,
    #[serde(default)]
    trace_id: Option<String>,
}

#[derive(Clone)]
pub struct TokenClient {
    upstream: Upstream,
    login_url: Url,
    graph_scope: String,
    connector_resource: String,
    cache: Cache<TokenKey, Arc<AccessToken>>,
}

impl TokenClient {
    /// A client of the token endpoint at `endpoints.login_url`, asking for the audiences of
    /// `endpoints` (the cloud's, whatever the addresses), caching tokens within `cache` (each
    /// token also leaves the cache shortly before its own expiry).
    pub fn new(
        upstream: Upstream,
        endpoints: &MicrosoftEndpoints,
        cache: CacheLimits,
    ) -> TokenClient {
        TokenClient {
            upstream,
            login_url: endpoints.login_url.clone(),
            graph_scope: endpoints.graph_scope.clone(),
            connector_resource: endpoints.mfa_connector_resource.clone(),
            cache: cache.build_keeping_for(),
        }
    }

    /// A valid token for `audience`, from the cache or from Microsoft.
    pub async fn token(
        &self,
        credentials: &ClientCredentials,
        audience: Audience,
    ) -> Result<Arc<AccessToken>, MicrosoftError> {
        let key = TokenKey {
            tenant: credentials.tenant.as_str().to_owned(),
            client_id: credentials.client_id.clone(),
            secret_fingerprint: Sha256::digest(
                credentials.client_secret.expose_secret().as_bytes(),
            )
            .into(),
            audience,
        };
        self.cache
            .try_get_with(key, self.fetch(credentials, audience))
            .await
            .map_err(|shared| (*shared).clone())
    }

    /// Forgets a token Microsoft refused (for example after the app's consent was revoked).
    pub async fn forget(&self, credentials: &ClientCredentials, audience: Audience) {
        let key = TokenKey {
            tenant: credentials.tenant.as_str().to_owned(),
            client_id: credentials.client_id.clone(),
            secret_fingerprint: Sha256::digest(
                credentials.client_secret.expose_secret().as_bytes(),
            )
            .into(),
            audience,
        };
        self.cache.invalidate(&key).await;
    }

    async fn fetch(
        &self,
        credentials: &ClientCredentials,
        audience: Audience,
    ) -> Result<Arc<AccessToken>, MicrosoftError> {
        let path = match audience {
            Audience::Graph => format!("{}/oauth2/v2.0/token", credentials.tenant),
            Audience::MfaConnector => format!("{}/oauth2/token", credentials.tenant),
        };
        let url = self.login_url.join(&path).map_err(|_| {
            MicrosoftError::new(MicrosoftErrorKind::Unexpected {
                status: None,
                code: Some("bad_login_url".into()),
            })
        })?;
        let (target_name, target_value) = match audience {
            Audience::Graph => ("scope", self.graph_scope.as_str()),
            Audience::MfaConnector => ("resource", self.connector_resource.as_str()),
        };
        let response = self
            .send_with_retries(|client| {
                client.post(url.clone()).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", credentials.client_id.as_str()),
                    ("client_secret", credentials.client_secret.expose_secret()),
                    (target_name, target_value),
                ])
            })
            .await?;
        let status = response.status();
        if status.is_success() {
            let body: TokenResponse = response.json().await.map_err(|_| {
                MicrosoftError::new(MicrosoftErrorKind::Unexpected {
                    status: Some(status.as_u16()),
                    code: Some("token_body".into()),
                })
            })?;
            let expires_in = match &body.expires_in {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            }
            .unwrap_or(3599);
            return Ok(Arc::new(AccessToken {
                value: SecretString::from(body.access_token),
                keep_for: renewal_horizon(Duration::from_secs(expires_in)),
            }));
        }
        let body: TokenErrorBody = response.json().await.unwrap_or_default();
        Err(classify_token_error(status.as_u16(), &body))
    }
}

/// Retries of one token request (so at most `1 + TOKEN_RETRIES` attempts).
const TOKEN_RETRIES: u32 = 3;
/// The most time one token request spends waiting between attempts, in total.
const TOKEN_MAX_TOTAL_WAIT: Duration = Duration::from_secs(10);
/// The backoff before the first retry, doubled each time, then jittered.
const TOKEN_BASE_BACKOFF: Duration = Duration::from_millis(200);

impl TokenClient {
    /// Sends a token request, retrying what Entra says is passing: a 429, a 500, 502, 503 or
    /// 504, and a request that got no answer at all (asking for a token twice is harmless).
    /// Waits honour `Retry-After`, else back off exponentially with jitter (so many instances
    /// refused together do not return together). Bounded in attempts and in total waiting;
    /// the last answer is returned as it is. The login [`Upstream`] is built without retries
    /// of its own (see [`crate::microsoft::Microsoft::new`]), so the bounds here are the
    /// only ones.
    async fn send_with_retries(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, MicrosoftError> {
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            let result = self.upstream.send(Idempotency::Idempotent, &build).await;
            let retry_after = match &result {
                Ok(response) if is_passing(response.status().as_u16()) => {
                    Some(crate::upstream::retry_after(response))
                }
                Err(TransportError::Network(_)) => Some(None),
                _ => None,
            };
            let Some(retry_after) = retry_after.filter(|_| attempt < TOKEN_RETRIES) else {
                return result.map_err(transport_error);
            };
            let wait =
                retry_after.unwrap_or_else(|| jittered(TOKEN_BASE_BACKOFF * 2u32.pow(attempt)));
            if waited + wait > TOKEN_MAX_TOTAL_WAIT {
                return result.map_err(transport_error);
            }
            tracing::info!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                "the Microsoft token endpoint failed for now; retrying"
            );
            tokio::time::sleep(wait).await;
            waited += wait;
            attempt += 1;
        }
    }
}

/// Answers of the token endpoint that say "try again later".
fn is_passing(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// `backoff` spread evenly over half to one and a half of itself.
fn jittered(backoff: Duration) -> Duration {
    use rand::Rng;
    backoff.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

pub(crate) fn transport_error(err: TransportError) -> MicrosoftError {
    match err {
        TransportError::TimedOut => MicrosoftError::new(MicrosoftErrorKind::TimedOut),
        TransportError::TooManyOpenFiles => {
            MicrosoftError::new(MicrosoftErrorKind::TooManyOpenFiles)
        }
        TransportError::Network(detail) | TransportError::Tls(detail) => {
            tracing::warn!(%detail, "Microsoft unreachable");
            MicrosoftError::new(MicrosoftErrorKind::Unavailable { status: None })
        }
    }
}

fn classify_token_error(status: u16, body: &TokenErrorBody) -> MicrosoftError {
    use MicrosoftErrorKind::*;
    let has = |code: u64| body.error_codes.contains(&code);
    let kind = if has(7000215) {
        InvalidClientSecret
    } else if has(7000222) {
        ExpiredClientSecret
    } else if has(700016) {
        AppNotConsented
    } else if has(90002) {
        TenantNotFound
    } else if has(7000112) || has(500014) {
        AppDisabled
    } else if status == 429 {
        Throttled { retry_after: None }
    } else if status >= 500 {
        Unavailable {
            status: Some(status),
        }
    } else {
        Unexpected {
            status: Some(status),
            code: Some(format!(
                "{}{}",
                body.error,
                body.error_codes
                    .first()
                    .map(|c| format!(" AADSTS{c}"))
                    .unwrap_or_default()
            )),
        }
    };
    MicrosoftError::new(kind).with_request_id(body.trace_id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_become_specific_errors() {
        let body = |codes: Vec<u64>| TokenErrorBody {
            error: "invalid_client".into(),
            error_codes: codes,
            trace_id: Some("trace-1".into()),
        };
        assert_eq!(
            classify_token_error(401, &body(vec![7000215])).kind,
            MicrosoftErrorKind::InvalidClientSecret
        );
        assert_eq!(
            classify_token_error(401, &body(vec![7000222])).kind,
            MicrosoftErrorKind::ExpiredClientSecret
        );
        assert_eq!(
            classify_token_error(400, &body(vec![700016])).kind,
            MicrosoftErrorKind::AppNotConsented
        );
        let err = classify_token_error(400, &body(vec![90002]));
        assert_eq!(err.kind, MicrosoftErrorKind::TenantNotFound);
        assert_eq!(err.request_id.as_deref(), Some("trace-1"));
    }
}
