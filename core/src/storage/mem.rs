//! In-memory engine for simulation (placeholder until it lands).
