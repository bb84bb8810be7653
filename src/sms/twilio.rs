//! The Twilio-compatible provider (being written).

/// Sends through a Twilio-compatible API.
pub struct TwilioSms;
