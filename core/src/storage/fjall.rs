//! fjall engine (placeholder until it lands).
