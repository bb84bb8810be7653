//! The SMS provider sandbox (being written).
