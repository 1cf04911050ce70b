//! Sequential specifications that histories are checked against.
//!
//! Two models, each applied to one key at a time (the checker partitions by key):
//! - `register`: initial `nil`; read / write / cas. A cas that takes effect needs the value to
//!   equal `expected` (Knossos' `cas-register`, porcupine's etcd model).
//! - `kv`: a string per key, initial `""`; read / write / append (concatenation) / cas. `nil`
//!   reads and writes as `""`, the way a missing key reads in an append workload.
//!
//! [`Machine`] is the fast form the search runs on: values and states are interned as `u32`
//! ids per partition, so a step is a few integer comparisons; appends memoise their results so
//! each new string is built once.

use std::collections::HashMap;
use std::fmt;

use crate::history::{Call, Op, Value};

/// Which sequential specification to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// One register per key, initially `nil`: read, write, cas.
    Register,
    /// One string per key, initially `""`: read, write, append, cas.
    Kv,
}

impl ModelKind {
    /// `register` or `kv`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::Kv => "kv",
        }
    }

    /// The model with this name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "register" => Some(ModelKind::Register),
            "kv" => Some(ModelKind::Kv),
            _ => None,
        }
    }

    /// The state every key starts in.
    pub fn initial(self) -> Value {
        match self {
            ModelKind::Register => Value::Nil,
            ModelKind::Kv => Value::Str(String::new()),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A history uses an operation its model does not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ModelError {
    /// The input line of the operation, when read from a file.
    pub line: Option<usize>,
    /// What was wrong.
    pub message: String,
}

/// An interned value or state of one partition.
pub(crate) type StateId = u32;

/// An operation's effect in interned form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Legal iff the state is this value; no change.
    Read(StateId),
    /// Always legal; the state becomes this value.
    Write(StateId),
    /// Legal iff the state is the first value; it becomes the second.
    Cas(StateId, StateId),
    /// Always legal; the state's text gets suffix number `.0` appended.
    Append(u32),
}

/// One partition's model: interned values and the step function.
#[derive(Debug)]
pub(crate) struct Machine {
    kind: ModelKind,
    values: Vec<Value>,
    ids: HashMap<Value, StateId>,
    suffixes: Vec<String>,
    appended: HashMap<(StateId, u32), StateId>,
}

impl Machine {
    /// A machine whose initial state is [`Machine::initial`].
    pub(crate) fn new(kind: ModelKind) -> Self {
        let mut machine = Machine {
            kind,
            values: Vec::new(),
            ids: HashMap::new(),
            suffixes: Vec::new(),
            appended: HashMap::new(),
        };
        machine.intern(kind.initial());
        machine
    }

    /// The initial state.
    pub(crate) fn initial(&self) -> StateId {
        0
    }

    /// The value a state stands for.
    pub(crate) fn value(&self, state: StateId) -> &Value {
        &self.values[state as usize]
    }

    /// The effect of `op`, whose call must be one this model has.
    ///
    /// A read's action needs its output: callers drop reads whose value is unknown.
    pub(crate) fn compile(&mut self, op: &Op) -> Result<Action, ModelError> {
        match &op.call {
            Call::Read { .. } => {
                let read = op.output.clone().unwrap_or(Value::Nil);
                Ok(Action::Read(self.intern(read)))
            }
            Call::Write { value, .. } => Ok(Action::Write(self.intern(value.clone()))),
            Call::Cas { expected, new, .. } => Ok(Action::Cas(
                self.intern(expected.clone()),
                self.intern(new.clone()),
            )),
            Call::Append { value, .. } => self.compile_append(op, value),
        }
    }

    /// The state after `action` from `state`, or `None` if the action is illegal there.
    #[inline]
    pub(crate) fn step(&mut self, state: StateId, action: Action) -> Option<StateId> {
        match action {
            Action::Read(v) => (v == state).then_some(state),
            Action::Write(v) => Some(v),
            Action::Cas(expected, new) => (expected == state).then_some(new),
            Action::Append(suffix) => Some(self.append(state, suffix)),
        }
    }

    fn compile_append(&mut self, op: &Op, value: &Value) -> Result<Action, ModelError> {
        if self.kind != ModelKind::Kv {
            return Err(ModelError {
                line: op.invoke_line,
                message: format!(
                    "the {} model has no append (op `{}` of process {}); use --model kv",
                    self.kind, op.call, op.process
                ),
            });
        }
        let suffix = u32::try_from(self.suffixes.len()).unwrap_or(u32::MAX);
        self.suffixes.push(value.to_text());
        Ok(Action::Append(suffix))
    }

    fn append(&mut self, state: StateId, suffix: u32) -> StateId {
        if let Some(&next) = self.appended.get(&(state, suffix)) {
            return next;
        }
        let mut text = self.values[state as usize].to_text();
        text.push_str(&self.suffixes[suffix as usize]);
        let next = self.intern(Value::Str(text));
        self.appended.insert((state, suffix), next);
        next
    }

    fn intern(&mut self, value: Value) -> StateId {
        let value = match self.kind {
            ModelKind::Register => value,
            ModelKind::Kv => Value::Str(value.to_text()),
        };
        if let Some(&id) = self.ids.get(&value) {
            return id;
        }
        let id = StateId::try_from(self.values.len()).unwrap_or(StateId::MAX);
        self.values.push(value.clone());
        self.ids.insert(value, id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    fn op(call: Call, output: Option<Value>) -> Op {
        Op {
            process: 0,
            call,
            outcome: Outcome::Ok,
            output,
            invoke_time: 0,
            complete_time: Some(1),
            invoke_line: None,
            complete_line: None,
        }
    }

    #[test]
    fn register_cas_takes_effect_only_on_the_expected_value() {
        let mut m = Machine::new(ModelKind::Register);
        let cas = m
            .compile(&op(Call::cas(None, Value::Nil, Value::Int(1)), None))
            .unwrap();
        let one = m.step(m.initial(), cas).unwrap();
        assert_eq!(m.value(one), &Value::Int(1));
        assert_eq!(m.step(one, cas), None);
    }

    #[test]
    fn kv_append_concatenates_and_nil_reads_as_empty() {
        let mut m = Machine::new(ModelKind::Kv);
        let read_nil = m
            .compile(&op(Call::read(Some("k")), Some(Value::Nil)))
            .unwrap();
        assert_eq!(m.step(m.initial(), read_nil), Some(m.initial()));
        let a = m
            .compile(&op(Call::append(Some("k"), Value::str("a")), None))
            .unwrap();
        let b = m
            .compile(&op(Call::append(Some("k"), Value::str("b")), None))
            .unwrap();
        let s = m.step(m.initial(), a).unwrap();
        let s = m.step(s, b).unwrap();
        assert_eq!(m.value(s), &Value::str("ab"));
        let read_ab = m
            .compile(&op(Call::read(Some("k")), Some(Value::str("ab"))))
            .unwrap();
        assert_eq!(m.step(s, read_ab), Some(s));
    }

    #[test]
    fn register_model_rejects_append() {
        let mut m = Machine::new(ModelKind::Register);
        let err = m
            .compile(&op(Call::append(None, Value::str("a")), None))
            .unwrap_err();
        assert!(err.message.contains("--model kv"), "{err}");
    }
}
