//! Hand-written histories pinning the checker's semantics.

use super::*;
use crate::history::{Clock, Completion, HistoryBuilder, Stamp};

/// Events in real-time order; time = position.
struct Script {
    builder: HistoryBuilder,
    time: u64,
}

impl Script {
    fn new() -> Self {
        Script {
            builder: HistoryBuilder::new(Clock::EventOrder),
            time: 0,
        }
    }

    fn stamp(&mut self) -> Stamp {
        self.time += 1;
        Stamp::at(self.time)
    }

    fn invoke(mut self, process: u64, call: Call) -> Self {
        let at = self.stamp();
        self.builder.invoke(process, call, at).unwrap();
        self
    }

    fn done(mut self, process: u64, completion: Completion) -> Self {
        let at = self.stamp();
        self.builder.complete(process, completion, at).unwrap();
        self
    }

    fn ok(self, process: u64) -> Self {
        self.done(process, Completion::ok())
    }

    fn read(self, process: u64, value: Value) -> Self {
        self.done(process, Completion::read_ok(value))
    }

    fn check(self, model: ModelKind) -> CheckResult {
        check(&self.builder.finish(), model, &Budget::default()).unwrap()
    }
}

fn int(v: i64) -> Value {
    Value::Int(v)
}

fn write(v: i64) -> Call {
    Call::write(None, int(v))
}

fn cas(a: i64, b: i64) -> Call {
    Call::cas(None, int(a), int(b))
}

fn read() -> Call {
    Call::read(None)
}

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(
        Script::new().check(ModelKind::Register).verdict,
        Verdict::Linearizable
    );
}

#[test]
fn stale_read_after_a_completed_write_is_a_violation() {
    let r = Script::new()
        .invoke(0, write(1))
        .ok(0)
        .invoke(0, write(2))
        .ok(0)
        .invoke(1, read())
        .read(1, int(1))
        .check(ModelKind::Register);
    assert_eq!(r.verdict, Verdict::Violation);
    let v = r.violation.unwrap();
    assert_eq!(
        v.prefix.iter().map(|s| s.op).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(v.unorderable, vec![2]);
}

#[test]
fn read_concurrent_with_a_write_may_see_either_value() {
    for seen in [Value::Nil, int(1)] {
        let r = Script::new()
            .invoke(0, write(1))
            .invoke(1, read())
            .read(1, seen)
            .ok(0)
            .check(ModelKind::Register);
        assert_eq!(r.verdict, Verdict::Linearizable);
    }
}

#[test]
fn read_of_a_value_never_written_is_a_violation() {
    let r = Script::new()
        .invoke(0, write(1))
        .invoke(1, read())
        .read(1, int(7))
        .ok(0)
        .check(ModelKind::Register);
    assert_eq!(r.verdict, Verdict::Violation);
}

#[test]
fn info_write_may_never_take_effect() {
    let r = Script::new()
        .invoke(0, write(1))
        .done(0, Completion::info())
        .invoke(1, read())
        .read(1, Value::Nil)
        .check(ModelKind::Register);
    assert_eq!(r.verdict, Verdict::Linearizable);
}

#[test]
fn info_write_may_take_effect_long_after_its_invocation() {
    let r = Script::new()
        .invoke(0, write(1))
        .done(0, Completion::info())
        .invoke(1, read())
        .read(1, Value::Nil)
        .invoke(1, write(2))
        .ok(1)
        .invoke(1, read())
        .read(1, int(1))
        .check(ModelKind::Register);
    assert_eq!(r.verdict, Verdict::Linearizable);
}

#[test]
fn info_write_cannot_take_effect_before_its_invocation() {
    let r = Script::new()
        .invoke(1, read())
        .read(1, int(1))
        .invoke(0, write(1))
        .done(0, Completion::info())
        .check(ModelKind::Register);
    assert_eq!(r.verdict, Verdict::Violation);
}

#[test]
fn failed_write_never_takes_effect() {
    let r = Script::new()
        .invoke(0, write(1))
        .done(0, Completion::fail())
        .invoke(1, read())
        .read(1, int(1))
        .check(ModelKind::Register);
    assert_eq!(r.verdict, Verdict::Violation);
}

#[test]
fn cas_succeeds_only_from_the_expected_value() {
    let ok = Script::new()
        .invoke(0, write(1))
        .ok(0)
        .invoke(0, cas(1, 2))
        .ok(0)
        .invoke(1, read())
        .read(1, int(2))
        .check(ModelKind::Register);
    assert_eq!(ok.verdict, Verdict::Linearizable);
    let bad = Script::new()
        .invoke(0, write(3))
        .ok(0)
        .invoke(0, cas(1, 2))
        .ok(0)
        .check(ModelKind::Register);
    assert_eq!(bad.verdict, Verdict::Violation);
}

#[test]
fn info_cas_takes_effect_only_if_its_compare_holds() {
    let r = Script::new()
        .invoke(0, cas(5, 2))
        .done(0, Completion::info())
        .invoke(1, read())
        .read(1, int(2))
        .check(ModelKind::Register);
    assert_eq!(r.verdict, Verdict::Violation);
}

#[test]
fn read_with_unknown_value_constrains_nothing() {
    let r = Script::new()
        .invoke(1, read())
        .done(1, Completion::ok())
        .check(ModelKind::Register);
    assert_eq!(r.verdict, Verdict::Linearizable);
}

#[test]
fn kv_appends_concatenate_in_linearization_order() {
    let key = Some("k");
    let base = || {
        Script::new()
            .invoke(0, Call::append(key, Value::str("a")))
            .invoke(1, Call::append(key, Value::str("b")))
            .ok(0)
            .ok(1)
            .invoke(2, Call::read(key))
    };
    for seen in ["ab", "ba"] {
        let r = base().read(2, Value::str(seen)).check(ModelKind::Kv);
        assert_eq!(r.verdict, Verdict::Linearizable, "{seen}");
    }
    let r = base().read(2, Value::str("a")).check(ModelKind::Kv);
    assert_eq!(r.verdict, Verdict::Violation);
}

#[test]
fn kv_keys_are_checked_independently_and_the_smallest_failing_key_is_reported() {
    let x = Some("x");
    let y = Some("y");
    let r = Script::new()
        .invoke(0, Call::append(x, Value::str("1")))
        .ok(0)
        .invoke(0, Call::read(x))
        .read(0, Value::str("1"))
        .invoke(0, Call::read(x))
        .read(0, Value::str("1"))
        .invoke(1, Call::append(y, Value::str("1")))
        .ok(1)
        .invoke(1, Call::read(y))
        .read(1, Value::str(""))
        .check(ModelKind::Kv);
    assert_eq!(r.verdict, Verdict::Violation);
    let v = r.violation.unwrap();
    assert_eq!(v.key.as_deref(), Some("y"));
    assert_eq!(v.ops, vec![3, 4]);
}

#[test]
fn register_keys_are_independent_registers() {
    let r = Script::new()
        .invoke(0, Call::write(Some("a"), int(1)))
        .ok(0)
        .invoke(0, Call::read(Some("b")))
        .read(0, Value::Nil)
        .check(ModelKind::Register);
    assert_eq!(r.verdict, Verdict::Linearizable);
    assert_eq!(r.partitions.len(), 2);
}

#[test]
fn step_budget_exhaustion_is_unknown() {
    let mut s = Script::new();
    for p in 0..40 {
        s = s.invoke(p, write(p as i64));
    }
    for p in 0..40 {
        s = s.ok(p);
    }
    s = s.invoke(99, read()).read(99, int(1000));
    let history = s.builder.finish();
    let budget = Budget {
        max_steps: Some(2048),
        max_duration: None,
    };
    let r = check(&history, ModelKind::Register, &budget).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
}
