//! Writes every verification decision and every reset to the PSA ticket it came from, as an
//! internal note, through the ticket's own PSA adapter.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::PsaAdapters;
use crate::core::activity::{ActivityObserver, MethodChange};
use crate::store::Store;

use crate::domain::{ErrorCode, ResetStatus, VerificationMethod, VerificationStatus};
use crate::domain::{PasswordReset, Verification};

pub struct TicketNotes {
    store: Store,
    adapters: PsaAdapters,
}

impl TicketNotes {
    pub fn new(store: Store, adapters: PsaAdapters) -> Arc<TicketNotes> {
        Arc::new(TicketNotes { store, adapters })
    }

    async fn write(&self, verification: &Verification, text: String) {
        self.write_to(
            verification.psa_connection_id,
            verification.psa_ticket_id.as_deref(),
            text,
        )
        .await
    }

    async fn write_to(&self, connection_id: Option<Uuid>, ticket_id: Option<&str>, text: String) {
        let (Some(connection_id), Some(ticket_id)) = (connection_id, ticket_id) else {
            return; // asked from the API, not from a ticket
        };
        let connection = match self.store.get_connection(connection_id).await {
            Ok(Some(connection)) => connection,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "no PSA connection for a ticket note");
                return;
            }
        };
        let adapter = self.adapters.adapter(connection.kind);
        if let Err(err) = adapter
            .add_internal_note(&connection, ticket_id, &text)
            .await
        {
            tracing::warn!(
                code = err.code().as_str(),
                psa = connection.kind.as_str(),
                "could not write the ticket note"
            );
        }
    }

    /// Until when a fraud report on `verification` holds the user's resets, if it does.
    async fn resets_held_until(
        &self,
        verification: &Verification,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        if verification.failure_code != Some(ErrorCode::FraudReported) {
            return None;
        }
        match self.store.hold_of_verification(verification.id).await {
            Ok(hold) => hold.map(|h| h.held_until),
            Err(err) => {
                tracing::warn!(error = %err, "could not read the reset hold for a ticket note");
                None
            }
        }
    }

    async fn technician_name(&self, verification: &Verification) -> String {
        match verification.technician_id {
            Some(id) => match self.store.get_technician(id).await {
                Ok(Some(technician)) => technician.display_name,
                _ => "a technician".to_owned(),
            },
            None => "the Vouch API".to_owned(),
        }
    }
}

fn method_name(method: VerificationMethod) -> &'static str {
    match method {
        VerificationMethod::Push => "Microsoft Authenticator push",
        VerificationMethod::SmsCode => "SMS code",
        VerificationMethod::SmsLink => "one-tap SMS link",
    }
}

/// `resets_held_until`: the hold a fraud report put on the user's resets, if any.
fn outcome_text(
    verification: &Verification,
    resets_held_until: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    match (verification.status, verification.failure_code) {
        (VerificationStatus::Approved, _) => match verification.verified_until {
            // The pod counts down to the same instant, rounding the minutes the same way.
            Some(until) => {
                let minutes = verification
                    .decided_at
                    .map(|at| crate::domain::whole_minutes_left(until - at))
                    .unwrap_or(0);
                format!(
                    "VERIFIED until {} UTC ({minutes} minutes)",
                    until.format("%Y-%m-%d %H:%M")
                )
            }
            None => "VERIFIED".to_owned(),
        },
        (VerificationStatus::Denied, Some(ErrorCode::FraudReported)) => match resets_held_until {
            Some(until) => format!(
                "DENIED: the user reported it as fraud (\"It's not me\"). Password resets of this user are held until {} unless an MSP admin lifts the hold",
                crate::domain::utc_minute(until)
            ),
            None => "DENIED: the user reported it as fraud (\"It's not me\")".to_owned(),
        },
        (VerificationStatus::Denied, _) => "DENIED by the user".to_owned(),
        (VerificationStatus::Expired, _) => "EXPIRED: no answer in time".to_owned(),
        (VerificationStatus::Cancelled, _) => "cancelled by the technician".to_owned(),
        (other, Some(code)) => format!("{} ({code})", other.as_str().to_ascii_uppercase()),
        (other, None) => other.as_str().to_ascii_uppercase(),
    }
}

#[async_trait]
impl ActivityObserver for TicketNotes {
    async fn verification_decided(&self, verification: &Verification) {
        let mut text = format!(
            "Vouch identity check of {} by {}: {}. Requested by {}.",
            verification.user_principal_name,
            method_name(verification.method),
            outcome_text(verification, self.resets_held_until(verification).await),
            self.technician_name(verification).await
        );
        if let Some(reason) = &verification.reason {
            text.push_str(&format!(
                " Not the ticket's contact; reason given: {reason}."
            ));
        }
        if verification.used_contact_phone_fallback {
            text.push_str(" The code went to the PSA contact's mobile (MSP policy allows it).");
        }
        self.write(verification, text).await;
    }

    async fn reset_finished(&self, reset: &PasswordReset, verification: &Verification) {
        let text = match reset.status {
            ResetStatus::Completed => format!(
                "Vouch: the Microsoft 365 password of {} was reset by {}. A one-time secure link to the new password was sent by SMS to {}.",
                verification.user_principal_name,
                self.technician_name(verification).await,
                reset
                    .sent_to_masked
                    .as_deref()
                    .unwrap_or("the user's mobile")
            ),
            ResetStatus::CompletedSmsFailed => format!(
                "Vouch: the Microsoft 365 password of {} was reset by {}, but the SMS with the secure link could not be sent ({}). Send a new link.",
                verification.user_principal_name,
                self.technician_name(verification).await,
                reset.failure_code.map_or("error", ErrorCode::as_str)
            ),
            ResetStatus::OutcomeUnknown => format!(
                "Vouch: the password reset of {} by {} has an UNKNOWN OUTCOME: Microsoft's answer was lost {} time(s) ({}), so the password MAY have changed. No link was sent. Send the link anyway, or start over with a new verification.",
                verification.user_principal_name,
                self.technician_name(verification).await,
                reset.patch_attempts,
                reset.failure_code.map_or("error", ErrorCode::as_str)
            ),
            ResetStatus::Failed if reset.failure_code == Some(ErrorCode::ResetInterrupted) => {
                format!(
                    "Vouch: the password reset of {} was interrupted before the new password was sent to Microsoft; nothing changed. Start the reset again.",
                    verification.user_principal_name,
                )
            }
            ResetStatus::Failed | ResetStatus::InProgress => format!(
                "Vouch: the password reset of {} failed ({}).",
                verification.user_principal_name,
                reset.failure_code.map_or("error", ErrorCode::as_str)
            ),
        };
        self.write(verification, text).await;
    }

    async fn reset_link_resent(&self, reset: &PasswordReset, verification: &Verification) {
        let text = format!(
            "Vouch: the secure link to the new Microsoft 365 password of {} was sent again, by SMS to {} (resent {} time(s) so far).",
            verification.user_principal_name,
            reset
                .sent_to_masked
                .as_deref()
                .unwrap_or("the user's mobile"),
            reset.resends,
        );
        self.write(verification, text).await;
    }

    async fn default_method_changed(&self, change: &MethodChange) {
        let text = format!(
            "Vouch: the default sign-in method of {} was changed to the Microsoft Authenticator push, at the request of {}.",
            change.upn, change.requested_by,
        );
        self.write_to(
            change.psa_connection_id,
            change.psa_ticket_id.as_deref(),
            text,
        )
        .await;
    }
}
