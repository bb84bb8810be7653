//! Clients of Microsoft: the token endpoint (`token`), Graph (`graph`) and the MFA connector
//! (`mfa`), behind one [`Microsoft`] handle built from configuration. Every base URL comes
//! from configuration, so the same code talks to Microsoft, a national cloud or the sandbox.
//! The checked steps the core builds on (a reset only after its refusals were checked, a push
//! only when it would prompt the user) live on [`Microsoft`].

pub mod error;
pub mod graph;
pub mod mfa;
pub mod token;
pub mod types;

use std::time::Duration;

use crate::config::{CacheLimits, MicrosoftConfig};
use crate::telemetry::Metrics;
use crate::upstream::{RetryPolicy, Upstream};
pub use error::{MicrosoftError, MicrosoftErrorKind};
pub use graph::PasswordChangeError;
use graph::{GraphClient, GraphUser, PUSH_METHOD, PhoneMethod};
use mfa::{MfaConnectorClient, PushResult};
use token::TokenClient;
pub use types::{ClientCredentials, TenantRef, Upn};

#[derive(Clone)]
pub struct Microsoft {
    pub tokens: TokenClient,
    pub graph: GraphClient,
    pub connector: MfaConnectorClient,
}

impl Microsoft {
    /// The clients of `config`'s endpoints; app-only tokens are cached within `token_cache`.
    pub fn new(config: &MicrosoftConfig, token_cache: CacheLimits, metrics: &Metrics) -> Microsoft {
        let request_timeout = Duration::from_secs(config.request_timeout_seconds);
        let policy = RetryPolicy::default();
        let endpoints = config.endpoints();
        let tokens = TokenClient::new(
            // No retries here: the token client makes its own, with jitter, for 5xx too.
            Upstream::new(
                "microsoft_login",
                request_timeout,
                metrics.clone(),
                RetryPolicy {
                    max_retries: 0,
                    ..policy
                },
            ),
            &endpoints,
            token_cache,
        );
        let graph = GraphClient::new(
            Upstream::new("microsoft_graph", request_timeout, metrics.clone(), policy),
            endpoints.graph_url.clone(),
            tokens.clone(),
        );
        let connector = MfaConnectorClient::new(
            Upstream::new(
                "microsoft_mfa_connector",
                Duration::from_secs(config.connector_timeout_seconds),
                metrics.clone(),
                policy,
            ),
            endpoints.mfa_connector_url.clone(),
            tokens.clone(),
        );
        Microsoft {
            tokens,
            graph,
            connector,
        }
    }

    /// The checks that make Microsoft's own refusals of a password reset explainable, made
    /// before anything is changed: a user synchronised from on-premises, or one holding an
    /// admin role (unless `allow_admin` is set), is refused. `None` when the tenant has no such
    /// user. Only this makes a [`ResettableUser`], so [`Microsoft::reset_password_checked`]
    /// cannot skip the checks; in between, the caller may refuse for reasons of its own.
    ///
    /// One Graph request: the user, their directory roles and their phone methods (where the
    /// reset's link goes) are read in one `$batch`. Each part keeps its own failure, told in
    /// the order the checks are made: the user, then the roles, then (for the caller, through
    /// [`ResettableUser::phone_methods`]) the phones.
    pub async fn check_resettable(
        &self,
        credentials: &ClientCredentials,
        user_id: &str,
        allow_admin: bool,
    ) -> Result<Option<ResettableUser>, MicrosoftError> {
        let reads = self
            .graph
            .reset_reads(credentials, user_id, !allow_admin)
            .await?;
        let Some(user) = reads.user else {
            return Ok(None);
        };
        if user.is_synced_from_on_premises() {
            return Err(MicrosoftError::new(
                MicrosoftErrorKind::UserSyncedFromOnPremises,
            ));
        }
        if let Some(roles) = reads.roles {
            let roles = roles?;
            if !roles.is_empty() {
                return Err(MicrosoftError::new(
                    MicrosoftErrorKind::UserHoldsAdminRole {
                        roles: roles
                            .into_iter()
                            .map(|r| r.display_name.unwrap_or(r.id))
                            .collect(),
                    },
                ));
            }
        }
        Ok(Some(ResettableUser {
            user,
            phones: reads.phones,
        }))
    }

    /// Sets the password of a user that passed [`Microsoft::check_resettable`]. Returns
    /// Microsoft's request id.
    pub async fn reset_password_checked(
        &self,
        credentials: &ClientCredentials,
        user: &ResettableUser,
        password: &secrecy::SecretString,
        force_change_next_sign_in: bool,
    ) -> Result<Option<String>, PasswordChangeError> {
        self.graph
            .reset_password(
                credentials,
                &user.user.id,
                password,
                force_change_next_sign_in,
            )
            .await
    }

    /// Sends again a password change that [`Microsoft::reset_password_checked`] sent once and
    /// whose answer was lost (or that a stopped instance may have sent): the same body, with
    /// the same password, so it changes nothing that the first did not. The user was checked
    /// before the first sending.
    pub async fn repeat_password_change(
        &self,
        credentials: &ClientCredentials,
        user_object_id: &str,
        password: &secrecy::SecretString,
        force_change_next_sign_in: bool,
    ) -> Result<Option<String>, PasswordChangeError> {
        self.graph
            .reset_password(
                credentials,
                user_object_id,
                password,
                force_change_next_sign_in,
            )
            .await
    }

    /// Whether an Authenticator push would prompt `upn`: only when the user's default sign-in
    /// method is the push; otherwise the connector would not prompt the user and the
    /// technician would wait for nothing. One Graph call with `graph_credentials`. Only this
    /// makes a [`PushableUser`], so [`Microsoft::push_checked`] cannot skip the check; in
    /// between, the caller may record the push it is about to send.
    pub async fn check_push_is_default(
        &self,
        graph_credentials: &ClientCredentials,
        user_id: &str,
        upn: Upn,
        can_fix_preference: bool,
    ) -> Result<PushableUser, MicrosoftError> {
        let preferences = self
            .graph
            .sign_in_preferences(graph_credentials, user_id)
            .await?;
        match preferences
            .user_preferred_method_for_secondary_authentication
            .as_deref()
        {
            Some(PUSH_METHOD) => Ok(PushableUser { upn }),
            other => Err(MicrosoftError::new(
                MicrosoftErrorKind::PreferredMethodMismatch {
                    current_method: other.unwrap_or("not set").to_owned(),
                    can_fix: can_fix_preference,
                },
            )),
        }
    }

    /// Sends the push to a user that passed [`Microsoft::check_push_is_default`] and waits
    /// for the answer (one connector call with `connector_credentials`).
    pub async fn push_checked(
        &self,
        connector_credentials: &ClientCredentials,
        user: &PushableUser,
    ) -> Result<PushResult, MicrosoftError> {
        self.connector.push(connector_credentials, &user.upn).await
    }
}

/// A user whose password Vouch may reset: found in the tenant, cloud-only, and holding no
/// admin role unless that was allowed. Made only by [`Microsoft::check_resettable`].
#[derive(Debug, Clone)]
pub struct ResettableUser {
    user: GraphUser,
    /// Read with the user, in the same batch.
    phones: Result<Vec<PhoneMethod>, MicrosoftError>,
}

impl ResettableUser {
    /// The user as Graph described them when checked.
    pub fn user(&self) -> &GraphUser {
        &self.user
    }

    /// The user's phone methods as Graph listed them when checked, or why it could not.
    pub fn phone_methods(&self) -> Result<&[PhoneMethod], MicrosoftError> {
        self.phones.as_deref().map_err(Clone::clone)
    }
}

/// A user whose default sign-in method is the Authenticator push, so a push prompts them.
/// Made only by [`Microsoft::check_push_is_default`].
#[derive(Debug, Clone)]
pub struct PushableUser {
    upn: Upn,
}
