//! Sending an SMS and keeping a record of it (the body sealed, since it carries a code or a
//! link).

use std::sync::Arc;

use secrecy::SecretString;
use uuid::Uuid;

use crate::sms::{E164, SentSms, SmsError, SmsMessage, SmsProvider};
use crate::store::Store;
use crate::store::outbound::NewOutboundMessage;

#[derive(Clone)]
pub struct Messenger {
    sms: Arc<dyn SmsProvider>,
    store: Store,
}

impl Messenger {
    pub fn new(sms: Arc<dyn SmsProvider>, store: Store) -> Messenger {
        Messenger { sms, store }
    }

    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, to = %to.masked()))]
    pub async fn send_sms(
        &self,
        msp_id: Uuid,
        to: &E164,
        body: SecretString,
    ) -> Result<SentSms, SmsError> {
        let result = self
            .sms
            .send(&SmsMessage {
                to: to.clone(),
                body: body.clone(),
            })
            .await;
        let status = match &result {
            Ok(_) => "sent".to_owned(),
            Err(err) => format!("failed:{}", err.code()),
        };
        if let Err(err) = self
            .store
            .record_message(NewOutboundMessage {
                msp_id,
                channel: "sms".into(),
                to_number: to.as_str().to_owned(),
                body,
                status,
            })
            .await
        {
            // The message went (or not) either way; a missing record must not hide that.
            tracing::error!(error = %err, "could not record an outbound message");
        }
        result
    }
}
