//! The Microsoft sandbox (being written).
