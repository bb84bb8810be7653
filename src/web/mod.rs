//! Browser pages that are not part of the JSON API: the secure-share pages end users open
//! from an SMS.

pub mod pod;
pub mod share;
pub mod verify;
