//! What an MSP admin decides about verifications and resets.

use super::PasswordStyle;

/// The policies an MSP admin sets; the defaults are what a cautious MSP would choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MspPolicy {
    /// How long a contact stays "verified" after an approved verification.
    pub verified_window_seconds: i32,
    /// At most this many pushes per user per window (push-bombing protection).
    pub push_limit_count: i32,
    pub push_limit_window_seconds: i32,
    /// At most this many pushes per technician per window, across users (a technician, or
    /// someone with their PSA session, bombing several users).
    pub technician_push_limit_count: i32,
    /// May an SMS code go to the PSA contact's mobile when Microsoft has none registered?
    pub allow_contact_phone_fallback: bool,
    /// May users holding admin roles be reset?
    pub allow_admin_reset: bool,
    /// May the technician see a generated password (otherwise only the user, by link)?
    pub show_password_to_technician: bool,
    /// Length of generated passwords (random style) or minimum length (passphrase style).
    pub password_length: i32,
    /// How generated passwords look.
    pub password_style: PasswordStyle,
    /// Make the user choose a new password at their next sign-in.
    pub force_change_at_next_sign_in: bool,
    /// How long the password resets of a user are held after they report a verification as
    /// fraud ("It's not me"), unless an MSP admin lifts the hold first; 0 holds nothing.
    pub fraud_hold_seconds: i32,
    /// Do approved pushes count towards the push limits too? By default only what looks like
    /// push-bombing to the user counts (denied, unanswered, cancelled, still waiting).
    pub count_approved_pushes: bool,
    /// How long a secure share's link (a new password, or any secret an MSP sends) stays
    /// open when its creator does not say.
    pub share_lifetime_seconds: i32,
    /// How long a one-tap verification link sent by SMS stays valid.
    pub one_tap_link_lifetime_seconds: i32,
}

impl Default for MspPolicy {
    fn default() -> Self {
        MspPolicy {
            verified_window_seconds: 15 * 60,
            push_limit_count: 3,
            push_limit_window_seconds: 15 * 60,
            technician_push_limit_count: 10,
            allow_contact_phone_fallback: false,
            allow_admin_reset: false,
            show_password_to_technician: false,
            password_length: 16,
            password_style: PasswordStyle::Random,
            force_change_at_next_sign_in: true,
            fraud_hold_seconds: 24 * 60 * 60,
            count_approved_pushes: false,
            share_lifetime_seconds: 24 * 60 * 60,
            one_tap_link_lifetime_seconds: 5 * 60,
        }
    }
}
