//! Secure Data Sharing (being written).
