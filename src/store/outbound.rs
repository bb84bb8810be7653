//! Outbound messages (SMS), with their sealed bodies.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, EntityTrait};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::crypto::SealedPlace;
use super::entities::outbound_message;
use super::{Store, StoreError};
#[derive(Debug, Clone)]
pub struct NewOutboundMessage {
    pub msp_id: Uuid,
    pub channel: String,
    pub to_number: String,
    /// May carry a secure link, so it is sealed at rest.
    pub body: SecretString,
    pub status: String,
}

impl Store {
    pub async fn record_message(&self, new: NewOutboundMessage) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        let sealed = self.keyring().seal(
            &SealedPlace::new("outbound_messages", "body_sealed", id),
            new.body.expose_secret(),
        );
        let model = outbound_message::ActiveModel {
            id: Set(id),
            msp_id: Set(new.msp_id),
            channel: Set(new.channel),
            to_number: Set(new.to_number),
            body_sealed: Set(sealed),
            status: Set(new.status),
            provider_message_id: Set(None),
            failure_code: Set(None),
            created_at: Set(Utc::now()),
            sent_at: Set(None),
        };
        outbound_message::Entity::insert(model)
            .exec(self.connection())
            .await?;
        Ok(id)
    }
}
