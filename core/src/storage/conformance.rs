//! Conformance suite every engine passes (placeholder until it lands).
