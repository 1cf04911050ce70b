//! cairn-jepsen: histories of client operations and the checkers that judge them.
//!
//! - [`history`]: the operation model and [`HistoryBuilder`], which records histories and
//!   rejects impossible ones.
//! - [`format`]: reading (JSONL, porcupine's etcd logs, Knossos EDN) and writing (JSONL).
//! - [`linearizability`] with [`model`]: the Wing–Gong/Lowe checker, per-key (P-compositional),
//!   with a budget that answers `Unknown` instead of hanging.
//! - [`report`]: the violation report (text summary and self-contained HTML page).
//! - [`bench`]: timing the checker over a corpus.
//! - [`watch`]: the watch checker (etcd's watch guarantees) and its JSONL format.
//! - `run` (not under madsim): `cairn-jepsen run`, the real-process fault runner; the only
//!   module that uses tokio and `cairn_client`.
//!
//! Recording and checking, as the simulator or a runner does it:
//!
//! ```
//! use cairn_jepsen::{Budget, Call, Clock, Completion, HistoryBuilder, ModelKind, Stamp, Value, Verdict};
//!
//! let mut h = HistoryBuilder::new(Clock::Nanos);
//! h.invoke(1, Call::write(Some("x"), Value::str("5")), Stamp::at(10))?;
//! h.complete(1, Completion::ok(), Stamp::at(20))?;
//! h.invoke(2, Call::read(Some("x")), Stamp::at(30))?;
//! h.complete(2, Completion::read_ok(Value::Nil), Stamp::at(40))?;
//! let history = h.finish();
//! let result = cairn_jepsen::check(&history, ModelKind::Register, &Budget::default())?;
//! assert_eq!(result.verdict, Verdict::Violation); // a stale read
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bench;
pub mod format;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod report;
#[cfg(not(madsim))]
pub mod run;
pub mod watch;

pub use format::{Format, LoadError, ParseError};
pub use history::{
    Call, Clock, Completion, Function, History, HistoryBuilder, HistoryError, Op, Outcome, Stamp,
    Time, Value,
};
pub use linearizability::{
    Budget, CheckResult, PartitionResult, PrefixStep, Verdict, Violation, check,
};
pub use model::{ModelError, ModelKind};
