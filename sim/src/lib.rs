//! cairn-sim: whole cairn clusters as simulated hosts under madsim, under seeded faults,
//! with every client history checked.
//!
//! Each member runs the unchanged node code (`cairn_node::start`) on its own simulated host
//! with the `mem` storage engine, whose durable state outlives a simulated crash. A run
//! ([`run::run`]) is a function of its [`options::RunOptions`]: the seed drives the network,
//! the nemesis, the workloads and Raft's election timeouts, so a failing seed replays
//! exactly from the command it prints. Only built for simulation (`RUSTFLAGS="--cfg
//! madsim"`); in a normal build this crate is empty.
//!
//! - [`cluster`]: the simulated members and their disks.
//! - [`nemesis`]: partitions, lossy links, crashes, power cuts, fsync errors, stalls, clock
//!   jumps and skew, membership changes ([`membership`]).
//! - [`workload`] and [`client`]: the client processes and how their calls are recorded.
//! - [`watcher`] and [`lease`]: the watch and lease workloads, recorded for their checks;
//!   [`committed`]: the committed history the watchers are judged against, from the
//!   committed entries [`archive`] kept.
//! - [`recorder`]: the jepsen history and the invariants observed while running.
//! - [`convergence`]: the liveness phase's agreement and state comparison.
//! - [`failure`]: what a failed run found, by kind.
//! - [`simulation`], [`run`], [`sweep`]: one run inside madsim, one seed with its checks,
//!   many seeds in parallel; [`cli`]: the `cairn-sim` command.

#[cfg(madsim)]
pub mod archive;
#[cfg(madsim)]
pub mod cli;
#[cfg(madsim)]
pub mod client;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod committed;
#[cfg(madsim)]
pub mod convergence;
#[cfg(madsim)]
pub mod failure;
#[cfg(madsim)]
pub mod lease;
#[cfg(madsim)]
pub mod membership;
#[cfg(madsim)]
pub mod nemesis;
#[cfg(madsim)]
pub mod options;
#[cfg(madsim)]
pub mod recorder;
#[cfg(madsim)]
pub mod run;
#[cfg(madsim)]
pub mod simulation;
#[cfg(madsim)]
pub mod sweep;
#[cfg(madsim)]
pub mod watcher;
#[cfg(madsim)]
pub mod workload;
