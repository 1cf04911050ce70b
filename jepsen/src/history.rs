//! Histories of client operations: what every checker in this crate reads.
//!
//! An [`Op`] is one call of one client process, from its invocation to its completion, with
//! the outcome Jepsen gives it: `ok` (took effect, and a read returned the value it carries),
//! `fail` (definitely did not take effect) or `info` (unknown: it may take effect at any time
//! after its invocation, or never). An invocation that never completes is an `info` op.
//!
//! [`HistoryBuilder`] turns a stream of invoke/complete events in real-time order into ops and
//! keeps the invariants the checkers rely on: a process has at most one operation outstanding,
//! every completion matches an earlier invocation of the same process (and function), and event
//! times never decrease. A stream that breaks one of them is malformed ([`HistoryError`]),
//! never a verdict. The simulator and the real-process runner record through it; the parsers
//! in [`crate::format`] feed it from files.

use std::collections::BTreeMap;
use std::fmt;

/// A point in time: nanoseconds ([`Clock::Nanos`]) or an event's ordinal ([`Clock::EventOrder`]).
pub type Time = u64;

/// What the times of a [`History`] count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Times are the positions of the events in the input (it had no timestamps).
    EventOrder,
    /// Times are nanoseconds, as recorded.
    Nanos,
}

/// A value written, compared or read. `Nil` is an absent key (a register's initial state).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// Absent / null.
    Nil,
    /// An integer (the Jepsen and Knossos corpora use small integers).
    Int(i64),
    /// A string (the JSONL interchange format and cairn's own records).
    Str(String),
}

impl Value {
    /// A string value.
    pub fn str(text: impl Into<String>) -> Self {
        Value::Str(text.into())
    }

    /// The value as text, as the `kv` model sees it: `Nil` is the empty string.
    pub fn to_text(&self) -> String {
        match self {
            Value::Nil => String::new(),
            Value::Int(n) => n.to_string(),
            Value::Str(s) => s.clone(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The function an operation calls (Jepsen's `:f`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    /// Read the current value.
    Read,
    /// Overwrite the value.
    Write,
    /// Compare-and-set.
    Cas,
    /// Append to the (string) value.
    Append,
}

impl Function {
    /// The name used by every input format (`read`, `write`, `cas`, `append`).
    pub fn name(self) -> &'static str {
        match self {
            Function::Read => "read",
            Function::Write => "write",
            Function::Cas => "cas",
            Function::Append => "append",
        }
    }

    /// The function with this name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "read" => Some(Function::Read),
            "write" => Some(Function::Write),
            "cas" => Some(Function::Cas),
            "append" => Some(Function::Append),
            _ => None,
        }
    }
}

/// What an operation asked for. `key: None` is the single register of a one-key history.
///
/// Non-exhaustive: KV get/put/delete/txn calls of cairn's own records will join these.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// Read `key`; the value read is the op's [`Op::output`].
    Read {
        /// The key read.
        key: Option<String>,
    },
    /// Set `key` to `value`.
    Write {
        /// The key written.
        key: Option<String>,
        /// The new value.
        value: Value,
    },
    /// If `key` holds `expected`, set it to `new`.
    Cas {
        /// The key compared and set.
        key: Option<String>,
        /// The value the key must hold.
        expected: Value,
        /// The value it then gets.
        new: Value,
    },
    /// Append `value` (as text) to the text held by `key`.
    Append {
        /// The key appended to.
        key: Option<String>,
        /// The suffix.
        value: Value,
    },
}

impl Call {
    /// A read of `key`.
    pub fn read(key: Option<&str>) -> Self {
        Call::Read {
            key: key.map(str::to_owned),
        }
    }

    /// A write of `value` to `key`.
    pub fn write(key: Option<&str>, value: Value) -> Self {
        Call::Write {
            key: key.map(str::to_owned),
            value,
        }
    }

    /// A compare-and-set of `key` from `expected` to `new`.
    pub fn cas(key: Option<&str>, expected: Value, new: Value) -> Self {
        Call::Cas {
            key: key.map(str::to_owned),
            expected,
            new,
        }
    }

    /// An append of `value` to `key`.
    pub fn append(key: Option<&str>, value: Value) -> Self {
        Call::Append {
            key: key.map(str::to_owned),
            value,
        }
    }

    /// The function called.
    pub fn function(&self) -> Function {
        match self {
            Call::Read { .. } => Function::Read,
            Call::Write { .. } => Function::Write,
            Call::Cas { .. } => Function::Cas,
            Call::Append { .. } => Function::Append,
        }
    }

    /// The key the call touches (`None`: the single register).
    pub fn key(&self) -> Option<&str> {
        match self {
            Call::Read { key }
            | Call::Write { key, .. }
            | Call::Cas { key, .. }
            | Call::Append { key, .. } => key.as_deref(),
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.function().name())?;
        if let Some(key) = self.key() {
            write!(f, " {key}")?;
        }
        match self {
            Call::Read { .. } => Ok(()),
            Call::Write { value, .. } | Call::Append { value, .. } => write!(f, " {value}"),
            Call::Cas { expected, new, .. } => write!(f, " {expected}->{new}"),
        }
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It took effect (a read returned [`Op::output`]).
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Unknown: it may take effect at any time after its invocation, or never.
    Info,
}

impl Outcome {
    /// The Jepsen name: `ok`, `fail`, `info`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

/// One call of one process, invocation to completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// The client process (at most one op outstanding per process).
    pub process: u64,
    /// What was asked.
    pub call: Call,
    /// How it ended (`Info` if it never completed).
    pub outcome: Outcome,
    /// For an `ok` read, the value read; `None` if no value was returned or it is unknown.
    pub output: Option<Value>,
    /// When it was invoked.
    pub invoke_time: Time,
    /// When its completion was recorded; `None` if it never completed.
    pub complete_time: Option<Time>,
    /// The input line of the invocation, when read from a file.
    pub invoke_line: Option<usize>,
    /// The input line of the completion, when read from a file.
    pub complete_line: Option<usize>,
}

impl Op {
    /// `read x -> 3`, `write x 5`, `cas 1->2 (fail)`: a short description for reports.
    pub fn describe(&self) -> String {
        let mut text = self.call.to_string();
        if self.call.function() == Function::Read {
            match (&self.output, self.outcome) {
                (Some(v), Outcome::Ok) => text.push_str(&format!(" -> {v}")),
                (None, Outcome::Ok) => text.push_str(" -> ?"),
                _ => {}
            }
        }
        if self.outcome != Outcome::Ok {
            text.push_str(&format!(" ({})", self.outcome.name()));
        }
        text
    }

    /// `lines 12-15`, `line 12` or `` for ops recorded without a source.
    pub fn source(&self) -> String {
        match (self.invoke_line, self.complete_line) {
            (Some(a), Some(b)) => format!("lines {a}-{b}"),
            (Some(a), None) => format!("line {a}"),
            _ => String::new(),
        }
    }
}

/// A complete history: ops in invocation order.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// What the times count.
    pub clock: Clock,
    /// The operations, in invocation order.
    pub ops: Vec<Op>,
}

/// A history that cannot have happened, or an event stream that does not describe one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HistoryError {
    /// The input line of the offending event, when read from a file.
    pub line: Option<usize>,
    /// What was wrong, and what was expected.
    pub message: String,
}

/// When (and, for parsed input, where) an event happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The event's time.
    pub time: Time,
    /// The input line it came from.
    pub line: Option<usize>,
}

impl Stamp {
    /// An event at `time` with no source line (live recording).
    pub fn at(time: Time) -> Self {
        Stamp { time, line: None }
    }

    /// An event at `time` read from input line `line`.
    pub fn at_line(time: Time, line: usize) -> Self {
        Stamp {
            time,
            line: Some(line),
        }
    }
}

/// The completion of a process's outstanding call.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// How the call ended.
    pub outcome: Outcome,
    /// The value an `ok` read returned (`None`: unknown).
    pub output: Option<Value>,
    /// If given, the function the completion names; it must match the invocation's.
    pub function: Option<Function>,
}

impl Completion {
    /// The call took effect (for a read: see [`Completion::read_ok`]).
    pub fn ok() -> Self {
        Completion {
            outcome: Outcome::Ok,
            output: None,
            function: None,
        }
    }

    /// A read that returned `value`.
    pub fn read_ok(value: Value) -> Self {
        Completion {
            outcome: Outcome::Ok,
            output: Some(value),
            function: None,
        }
    }

    /// The call definitely did not take effect.
    pub fn fail() -> Self {
        Completion {
            outcome: Outcome::Fail,
            output: None,
            function: None,
        }
    }

    /// The outcome is unknown.
    pub fn info() -> Self {
        Completion {
            outcome: Outcome::Info,
            output: None,
            function: None,
        }
    }

    /// Require the invocation being completed to be of `function`.
    pub fn of(mut self, function: Function) -> Self {
        self.function = Some(function);
        self
    }
}

/// Pairs invoke/complete events into a [`History`], rejecting impossible ones.
#[derive(Debug)]
pub struct HistoryBuilder {
    clock: Clock,
    ops: Vec<Op>,
    open: BTreeMap<u64, usize>,
    last_time: Option<Time>,
}

impl HistoryBuilder {
    /// An empty history whose times count `clock`.
    pub fn new(clock: Clock) -> Self {
        HistoryBuilder {
            clock,
            ops: Vec::new(),
            open: BTreeMap::new(),
            last_time: None,
        }
    }

    /// Records that `process` invoked `call`; returns the op's index in the history.
    pub fn invoke(&mut self, process: u64, call: Call, at: Stamp) -> Result<usize, HistoryError> {
        self.advance_clock(at)?;
        if let Some(&open) = self.open.get(&process) {
            return Err(error(
                at,
                format!(
                    "process {process} invokes {} while its {} invoked {} has not completed \
                     (expected an ok/fail/info of process {process} first)",
                    call.function().name(),
                    self.ops[open].call.function().name(),
                    describe_place(&self.ops[open]),
                ),
            ));
        }
        let index = self.ops.len();
        self.ops.push(Op {
            process,
            call,
            outcome: Outcome::Info,
            output: None,
            invoke_time: at.time,
            complete_time: None,
            invoke_line: at.line,
            complete_line: None,
        });
        self.open.insert(process, index);
        Ok(index)
    }

    /// Records the completion of `process`'s outstanding call; returns the op's index.
    pub fn complete(
        &mut self,
        process: u64,
        completion: Completion,
        at: Stamp,
    ) -> Result<usize, HistoryError> {
        self.advance_clock(at)?;
        let Some(index) = self.open.remove(&process) else {
            return Err(error(
                at,
                format!(
                    "{} completion of process {process}, which has no invocation outstanding \
                     (expected an invoke of process {process} before it)",
                    completion.outcome.name()
                ),
            ));
        };
        let op = &mut self.ops[index];
        if let Some(function) = completion.function.filter(|&f| f != op.call.function()) {
            return Err(error(
                at,
                format!(
                    "completion of {} by process {process} answers its {} invoked {} \
                     (expected :f {})",
                    function.name(),
                    op.call.function().name(),
                    describe_place(op),
                    op.call.function().name(),
                ),
            ));
        }
        op.outcome = completion.outcome;
        op.output = completion
            .output
            .filter(|_| completion.outcome == Outcome::Ok);
        op.complete_time = Some(at.time);
        op.complete_line = at.line;
        Ok(index)
    }

    /// The call `process` has outstanding, if any.
    pub fn open_call(&self, process: u64) -> Option<&Call> {
        self.open.get(&process).map(|&i| &self.ops[i].call)
    }

    /// The history so far; calls still outstanding become `info` ops that never completed.
    pub fn finish(self) -> History {
        History {
            clock: self.clock,
            ops: self.ops,
        }
    }

    fn advance_clock(&mut self, at: Stamp) -> Result<(), HistoryError> {
        if let Some(last) = self.last_time.filter(|&last| at.time < last) {
            return Err(error(
                at,
                format!(
                    "time {} is before the previous event's time {last} (expected events in real-time order)",
                    at.time
                ),
            ));
        }
        self.last_time = Some(at.time);
        Ok(())
    }
}

fn describe_place(op: &Op) -> String {
    match op.invoke_line {
        Some(line) => format!("at line {line}"),
        None => format!("at time {}", op.invoke_time),
    }
}

fn error(at: Stamp, message: String) -> HistoryError {
    HistoryError {
        line: at.line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: i64) -> Call {
        Call::write(None, Value::Int(v))
    }

    #[test]
    fn pairs_invocations_with_completions_of_the_same_process() {
        let mut b = HistoryBuilder::new(Clock::EventOrder);
        b.invoke(1, w(1), Stamp::at(0)).unwrap();
        b.invoke(2, Call::read(None), Stamp::at(1)).unwrap();
        b.complete(2, Completion::read_ok(Value::Int(1)), Stamp::at(2))
            .unwrap();
        b.complete(1, Completion::ok(), Stamp::at(3)).unwrap();
        let h = b.finish();
        assert_eq!(h.ops.len(), 2);
        assert_eq!(h.ops[0].complete_time, Some(3));
        assert_eq!(h.ops[1].output, Some(Value::Int(1)));
    }

    #[test]
    fn completion_without_invocation_is_malformed() {
        let mut b = HistoryBuilder::new(Clock::EventOrder);
        let err = b
            .complete(4, Completion::ok(), Stamp::at_line(0, 7))
            .unwrap_err();
        assert_eq!(err.line, Some(7));
        assert!(err.message.contains("no invocation outstanding"), "{err}");
    }

    #[test]
    fn second_invocation_while_one_is_outstanding_is_malformed() {
        let mut b = HistoryBuilder::new(Clock::EventOrder);
        b.invoke(1, w(1), Stamp::at_line(0, 1)).unwrap();
        let err = b.invoke(1, w(2), Stamp::at_line(1, 2)).unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("has not completed"), "{err}");
    }

    #[test]
    fn completion_of_another_function_is_malformed() {
        let mut b = HistoryBuilder::new(Clock::EventOrder);
        b.invoke(1, w(1), Stamp::at(0)).unwrap();
        let err = b
            .complete(1, Completion::ok().of(Function::Cas), Stamp::at(1))
            .unwrap_err();
        assert!(err.message.contains("expected :f write"), "{err}");
    }

    #[test]
    fn time_going_backwards_is_malformed() {
        let mut b = HistoryBuilder::new(Clock::Nanos);
        b.invoke(1, w(1), Stamp::at(10)).unwrap();
        assert!(b.complete(1, Completion::ok(), Stamp::at(9)).is_err());
    }

    #[test]
    fn outstanding_call_at_the_end_is_an_info_op_that_never_completed() {
        let mut b = HistoryBuilder::new(Clock::EventOrder);
        b.invoke(1, w(1), Stamp::at(0)).unwrap();
        let h = b.finish();
        assert_eq!(h.ops[0].outcome, Outcome::Info);
        assert_eq!(h.ops[0].complete_time, None);
    }

    #[test]
    fn a_process_may_invoke_again_after_an_info_completion() {
        let mut b = HistoryBuilder::new(Clock::EventOrder);
        b.invoke(1, w(1), Stamp::at(0)).unwrap();
        b.complete(1, Completion::info(), Stamp::at(1)).unwrap();
        assert!(b.invoke(1, w(2), Stamp::at(2)).is_ok());
    }
}
