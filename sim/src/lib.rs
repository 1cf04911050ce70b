//! cairn-sim: whole cairn clusters as simulated hosts under madsim.
//!
//! Each member runs the unchanged node code (`cairn_node::start`) on its own simulated host
//! with the `mem` storage engine, whose durable state outlives a simulated crash. Only built
//! for simulation (`RUSTFLAGS="--cfg madsim"`); in a normal build this crate is empty.

#[cfg(madsim)]
pub mod cluster;
