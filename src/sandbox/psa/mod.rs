//! The PSA sandboxes (being written).
