//! What a failed run found, by kind, so that tests can tell an injected bug's signature
//! (a stale read, a lost write) from an unrelated failure.

use std::fmt;

/// The invariant a run broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The register history has no linearization (or could not be checked).
    Linearizability,
    /// A client saw the store revision go backwards.
    Revisions,
    /// An acknowledged write is missing, or a refused one took effect.
    Durability,
    /// Members that applied the same log hold different data.
    Convergence,
    /// One client request is in two log entries: it was applied twice.
    AppliedTwice,
    /// A watcher's responses broke a watch guarantee (or the committed history could not
    /// be rebuilt to judge them).
    Watch,
    /// A lease was revoked before its TTL ran out after its last acknowledged renewal, or
    /// renewed after it was revoked, or a revoked lease's key survived.
    Lease,
    /// The healed cluster did not elect, answer or converge within the bound.
    Liveness,
    /// The simulation panicked (an assertion in the node code, a member that could not
    /// restart, madsim's time limit).
    Panic,
}

impl Kind {
    /// The kind's name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Linearizability => "linearizability",
            Kind::Revisions => "revisions",
            Kind::Durability => "durability",
            Kind::Convergence => "convergence",
            Kind::AppliedTwice => "applied-twice",
            Kind::Watch => "watch",
            Kind::Lease => "lease",
            Kind::Liveness => "liveness",
            Kind::Panic => "panic",
        }
    }
}

/// One broken invariant and what showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which invariant.
    pub kind: Kind,
    /// What was seen.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}
