//! The optimised checker (memoisation with dominance, twin and useless-pending-op pruning)
//! against an obviously-correct brute-force search, on many small random histories of
//! registers and kv keys with ok, fail, info and never-completed ops. Pruning can only turn a
//! linearizable history into a false violation, so both directions are compared.

use cairn_jepsen::{
    Budget, Call, Clock, Completion, History, HistoryBuilder, ModelKind, Op, Outcome, Stamp, Value,
    Verdict, check,
};

/// A fixed-seed xorshift generator: the same histories on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_value(rng: &mut Rng, model: ModelKind) -> Value {
    match (model, rng.below(4)) {
        (ModelKind::Register, 0) => Value::Nil,
        (ModelKind::Register, n) => Value::Int(n as i64),
        (ModelKind::Kv, n) => Value::str(["", "a", "b", "ab"][n as usize]),
    }
}

fn random_call(rng: &mut Rng, model: ModelKind) -> Call {
    match (model, rng.below(3)) {
        (_, 0) => Call::read(None),
        (ModelKind::Register, 1) => {
            Call::cas(None, random_value(rng, model), random_value(rng, model))
        }
        (ModelKind::Kv, 1) => Call::append(None, Value::str(["a", "b"][rng.below(2) as usize])),
        _ => Call::write(None, random_value(rng, model)),
    }
}

/// A register or kv key that really runs the ops, each taking effect at its completion
/// (or, for an unknown outcome, maybe never); one read in `corrupt_in` returns a random value.
struct Simulated {
    model: ModelKind,
    state: Value,
    info_in: u64,
    corrupt_in: u64,
}

impl Simulated {
    fn complete(&mut self, rng: &mut Rng, call: &Call) -> Completion {
        if rng.below(self.info_in) == 0 {
            if rng.below(2) == 0 {
                self.apply(call);
            }
            return Completion::info();
        }
        match call {
            Call::Read { .. } if rng.below(self.corrupt_in) == 0 => {
                Completion::read_ok(random_value(rng, self.model))
            }
            Call::Read { .. } => Completion::read_ok(self.state.clone()),
            _ if self.apply(call) => Completion::ok(),
            _ => Completion::fail(),
        }
    }

    /// Applies a write/cas/append; false if a cas's compare fails.
    fn apply(&mut self, call: &Call) -> bool {
        match step_call(self.model, &self.state, call, None) {
            Some(next) => {
                self.state = next;
                true
            }
            None => false,
        }
    }
}

/// Up to `max_ops` ops over 3 processes, interleaved at random; some never complete.
fn random_history(rng: &mut Rng, model: ModelKind, max_ops: usize, info_in: u64) -> History {
    let mut sim = Simulated {
        model,
        state: initial(model),
        info_in,
        corrupt_in: 6,
    };
    let mut builder = HistoryBuilder::new(Clock::EventOrder);
    let mut open: Vec<Option<Call>> = vec![None; 3];
    let mut started = 0;
    let mut time = 0;
    while started < max_ops || open.iter().any(Option::is_some) {
        time += 1;
        let p = rng.below(3) as usize;
        match open[p].take() {
            Some(call) if started >= max_ops && rng.below(8) == 0 => drop(call),
            Some(call) => {
                let c = sim.complete(rng, &call);
                builder
                    .complete(p as u64, c, Stamp::at(time))
                    .expect("valid completion");
            }
            None if started < max_ops => {
                let call = random_call(rng, model);
                builder
                    .invoke(p as u64, call.clone(), Stamp::at(time))
                    .expect("valid invocation");
                open[p] = Some(call);
                started += 1;
            }
            None => {}
        }
    }
    builder.finish()
}

fn initial(model: ModelKind) -> Value {
    match model {
        ModelKind::Register => Value::Nil,
        ModelKind::Kv => Value::str(""),
    }
}

/// How an op takes part, as the issue defines it.
fn definite(op: &Op) -> Option<bool> {
    match (op.outcome, &op.call) {
        (Outcome::Fail, _) | (Outcome::Info, Call::Read { .. }) => None,
        (Outcome::Ok, Call::Read { .. }) if op.output.is_none() => None,
        (Outcome::Ok, _) => Some(true),
        _ => Some(false),
    }
}

fn text(v: &Value) -> String {
    v.to_text()
}

/// The model's step, written out plainly on values.
fn step(model: ModelKind, state: &Value, op: &Op) -> Option<Value> {
    step_call(model, state, &op.call, op.output.as_ref())
}

fn step_call(model: ModelKind, state: &Value, call: &Call, read: Option<&Value>) -> Option<Value> {
    let same = |a: &Value, b: &Value| match model {
        ModelKind::Register => a == b,
        ModelKind::Kv => text(a) == text(b),
    };
    match call {
        Call::Read { .. } => read.filter(|v| same(v, state)).map(|_| state.clone()),
        Call::Write { value, .. } => Some(value.clone()),
        Call::Cas { expected, new, .. } => same(expected, state).then(|| new.clone()),
        Call::Append { value, .. } => Some(Value::Str(text(state) + &text(value))),
        _ => None,
    }
}

/// Exhaustive search: any unplaced op may go next unless an unplaced definite op completed
/// before it was invoked; done when every definite op is placed.
fn brute_force(model: ModelKind, ops: &[&Op], placed: &mut Vec<bool>, state: &Value) -> bool {
    let waiting: Vec<usize> = (0..ops.len())
        .filter(|&i| !placed[i] && definite(ops[i]) == Some(true))
        .collect();
    if waiting.is_empty() {
        return true;
    }
    for i in 0..ops.len() {
        let blocked = waiting
            .iter()
            .any(|&d| d != i && ops[d].complete_time < Some(ops[i].invoke_time));
        if placed[i] || blocked {
            continue;
        }
        let Some(next) = step(model, state, ops[i]) else {
            continue;
        };
        placed[i] = true;
        let found = brute_force(model, ops, placed, &next);
        placed[i] = false;
        if found {
            return true;
        }
    }
    false
}

fn reference_verdict(model: ModelKind, history: &History) -> Verdict {
    let ops: Vec<&Op> = history
        .ops
        .iter()
        .filter(|op| definite(op).is_some())
        .collect();
    let mut placed = vec![false; ops.len()];
    if brute_force(model, &ops, &mut placed, &initial(model)) {
        Verdict::Linearizable
    } else {
        Verdict::Violation
    }
}

fn compare(model: ModelKind, seed: u64, histories: usize, max_ops: usize, info_in: u64) {
    let mut rng = Rng(seed);
    let mut seen = [0usize; 2];
    for n in 0..histories {
        let history = random_history(&mut rng, model, max_ops, info_in);
        let expected = reference_verdict(model, &history);
        let got = check(&history, model, &Budget::default())
            .expect("model fits")
            .verdict;
        assert_eq!(
            got,
            expected,
            "history {n} (seed {seed}), model {model}:\n{}",
            cairn_jepsen::format::jsonl::to_string(&history)
        );
        seen[usize::from(expected == Verdict::Violation)] += 1;
    }
    assert!(
        seen[0] > histories / 10 && seen[1] > histories / 10,
        "unbalanced sample: {seen:?}"
    );
}

#[test]
fn register_checker_agrees_with_brute_force_on_random_histories() {
    compare(ModelKind::Register, 0x5eed_0001, 3000, 9, 8);
}

#[test]
fn kv_checker_agrees_with_brute_force_on_random_histories() {
    compare(ModelKind::Kv, 0x5eed_0002, 3000, 9, 8);
}

#[test]
fn checker_agrees_with_brute_force_on_histories_with_many_unknown_outcomes() {
    compare(ModelKind::Register, 0x5eed_0003, 1000, 12, 3);
}
