//! The watch checker: does what each watcher received keep etcd's watch guarantees?
//!
//! Input is a [`WatchHistory`]: the committed KV history (one [`Commit`] per revision that
//! wrote something, events in the order the revision applied them, as mvccpb's `Event`), the
//! compactions, and every [`Watcher`]: its [`WatchRequest`] and the [`WatchResponse`]s it
//! received, in order. [`check`] walks the watchers in order, each one's responses and events
//! in order, and reports the FIRST broken guarantee as a [`WatchViolation`] naming the
//! [`Rule`], the watcher, the response and event index, and what was expected vs what came.
//!
//! The guarantees are the ones etcd documents for Watch (api_guarantees.md, "Watch APIs") and
//! that `mvcc/watchable_store.go` implements; DESIGN.md's "Watch" bullet lists them for cairn:
//!
//! - [`Rule::Filter`]: only events the request selects: keys in its range (etcd's forms: empty
//!   `range_end` = the single key, `"\0"` = every key `>= key`, else `[key, range_end)`; an
//!   empty key is `"\0"`, as in etcd's `v3rpc/watch.go`), and no type its filters drop.
//! - [`Rule::Committed`]: each event is a committed one, field for field (type, key, value,
//!   create/mod revision, version, lease).
//! - [`Rule::Derivable`]: a put has `version == 1` exactly when `create_revision ==
//!   mod_revision`, and `create_revision <= mod_revision`.
//! - [`Rule::Unique`]: no event twice.
//! - [`Rule::Ordered`]: by revision, and within a revision in the order it was committed.
//! - [`Rule::Resume`]: a watch from revision `r > 0` delivers nothing below `r` and begins with
//!   the first selected event at or after `r`: resuming at `last + 1` loses and repeats nothing.
//! - [`Rule::NoGaps`]: every selected event between the start and the last revision the watcher
//!   reached was delivered. It reached its last event's revision, and the revision of each
//!   progress notification (an empty response that is not `created`, `canceled` or a
//!   `fragment`). A start revision of 0 ("from now") starts at the first delivered event or
//!   just after the `created` response's header revision, whichever is earlier: etcd fixes
//!   the start revision before it reads the header's, so that is all a checker can know.
//!   A deletion at the revision of a recorded compaction may be missing (etcd's compaction
//!   at `r` drops the tombstones at `r`, so a watch from `r` does not see them), never
//!   delivered out of order.
//! - [`Rule::Atomic`]: all events of one revision in one response, unless the response holding
//!   the first part has `fragment` set.
//! - [`Rule::PrevKv`]: with `prev_kv` requested, each event carries the key's state just before
//!   it (absent if the key did not exist, or may be absent if a recorded compaction is above
//!   the revision before the event, as etcd reads it at `mod_revision - 1`); without, it
//!   carries none.
//! - [`Rule::Compaction`]: a watch whose start revision is below a compaction that completed
//!   before it was issued is canceled with `compact_revision` set and delivers no event; any
//!   compaction cancel names a recorded compaction above the revision the watcher needed next.
//! - [`Rule::Canceled`]: a cancel carries no events and is the watcher's last response.
//!
//! The committed history must itself be well formed (revisions increasing, each event's
//! `mod_revision` its commit's revision, a key at most once per revision); [`check`] refuses
//! one that is not with [`MalformedWatchHistory`], never a verdict. [`jsonl`] reads the file
//! format, `cairn-jepsen check-watch` runs the checker on files.

mod checker;
pub mod client;
pub mod jsonl;

#[cfg(test)]
mod tests;

use std::fmt;

pub use checker::check;

/// A revision, as etcd counts them (`int64` on the wire).
pub type Revision = i64;

/// mvccpb `Event.EventType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A put.
    Put,
    /// A delete.
    Delete,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventType::Put => "PUT",
            EventType::Delete => "DELETE",
        })
    }
}

/// mvccpb `KeyValue`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty in a delete event).
    pub value: Vec<u8>,
    /// The revision of the key's latest creation.
    pub create_revision: Revision,
    /// The revision of this modification.
    pub mod_revision: Revision,
    /// Modifications since creation, 1 for a creation (0 in a delete event).
    pub version: i64,
    /// The lease attached, 0 for none.
    pub lease: i64,
}

/// mvccpb `Event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventType,
    /// The key after the event (for a delete: the key and the delete's `mod_revision`).
    pub kv: KeyValue,
    /// The key's state just before the event, if it existed and was asked for.
    pub prev_kv: Option<KeyValue>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} @{}",
            self.kind,
            show_bytes(&self.kv.key),
            self.kv.mod_revision
        )
    }
}

/// One committed revision and its events, in the order the revision applied them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The store revision.
    pub revision: Revision,
    /// Its events. A commit event's `prev_kv`, if given, is the authority for the key's
    /// state before it (useful when the history starts after revision 1).
    pub events: Vec<Event>,
    /// The input line, when read from a file.
    pub line: Option<usize>,
}

/// A watch request: `WatchCreateRequest`'s fields that the guarantees depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchRequest {
    /// The key, or the range's start.
    pub key: Vec<u8>,
    /// Empty: the single key; `"\0"`: every key `>= key`; else `[key, range_end)`.
    pub range_end: Vec<u8>,
    /// The first revision to deliver; 0 = from the current revision on.
    pub start_revision: Revision,
    /// `NOPUT`: drop put events.
    pub no_put: bool,
    /// `NODELETE`: drop delete events.
    pub no_delete: bool,
    /// Attach each event's previous key-value.
    pub prev_kv: bool,
}

impl WatchRequest {
    /// Whether `key` lies in the watched range, with etcd's conventions.
    pub fn covers(&self, key: &[u8]) -> bool {
        let start: &[u8] = if self.key.is_empty() { &[0] } else { &self.key };
        match self.range_end.as_slice() {
            [] => key == start,
            [0] => key >= start,
            end => key >= start && key < end,
        }
    }

    /// Whether the filters let an event of this type through.
    pub fn passes(&self, kind: EventType) -> bool {
        match kind {
            EventType::Put => !self.no_put,
            EventType::Delete => !self.no_delete,
        }
    }
}

/// One `WatchResponse` a watcher received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchResponse {
    /// `header.revision`.
    pub header_revision: Revision,
    /// The events, in the order received.
    pub events: Vec<Event>,
    /// The watch was canceled.
    pub canceled: bool,
    /// With `canceled`: the compacted revision that made the start revision unavailable (0:
    /// canceled for another reason).
    pub compact_revision: Revision,
    /// More of this response follows in the next one (etcd's fragmented responses).
    pub fragment: bool,
    /// The watch's created response (its header revision is the revision at creation).
    pub created: bool,
    /// The input line, when read from a file.
    pub line: Option<usize>,
}

impl WatchResponse {
    /// An empty response that is not a creation, cancel or fragment: a progress notification,
    /// which promises that every selected event up to `header_revision` has been sent.
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty() && !self.created && !self.canceled && !self.fragment
    }
}

/// One watcher: what it asked for and what it received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watcher {
    /// Its id (unique in the history).
    pub id: u64,
    /// The request.
    pub request: WatchRequest,
    /// The highest compaction known to have completed before the request was issued (0: none).
    pub compacted_before: Revision,
    /// The responses, in the order received.
    pub responses: Vec<WatchResponse>,
    /// The input line of the request, when read from a file.
    pub line: Option<usize>,
}

/// Everything the watch checker reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchHistory {
    /// The committed history, revisions increasing.
    pub commits: Vec<Commit>,
    /// Every compaction that completed, by revision.
    pub compactions: Vec<Revision>,
    /// The watchers, in the order they were issued.
    pub watchers: Vec<Watcher>,
}

/// The guarantees, one per variant; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// Only keys in range, only types the filters let through.
    Filter,
    /// Events are committed ones, field for field.
    Committed,
    /// `version == 1` exactly for creations.
    Derivable,
    /// No event twice.
    Unique,
    /// By revision, and as committed within a revision.
    Ordered,
    /// Nothing before the start revision; the first selected event at or after it comes first.
    Resume,
    /// Nothing selected is skipped up to the last revision reached.
    NoGaps,
    /// One revision, one response (unless fragmented).
    Atomic,
    /// `prev_kv` is the key's previous state when asked for, absent otherwise.
    PrevKv,
    /// A compacted start revision cancels with `compact_revision` and no events.
    Compaction,
    /// A cancel is the last response and carries no events.
    Canceled,
}

impl Rule {
    /// The rule's name in reports: `filter`, `committed`, `derivable`, `unique`, `ordered`,
    /// `resume`, `no-gaps`, `atomic`, `prev-kv`, `compaction`, `canceled`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Filter => "filter",
            Rule::Committed => "committed",
            Rule::Derivable => "derivable",
            Rule::Unique => "unique",
            Rule::Ordered => "ordered",
            Rule::Resume => "resume",
            Rule::NoGaps => "no-gaps",
            Rule::Atomic => "atomic",
            Rule::PrevKv => "prev-kv",
            Rule::Compaction => "compaction",
            Rule::Canceled => "canceled",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The first broken guarantee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchViolation {
    /// Which guarantee.
    pub rule: Rule,
    /// The watcher's id.
    pub watcher: u64,
    /// The index of the response in the watcher's responses (None: the watcher as a whole).
    pub response: Option<usize>,
    /// The index of the event in that response, if one event is at fault.
    pub event: Option<usize>,
    /// The input line of that response (or of the request), when read from a file.
    pub line: Option<usize>,
    /// What the guarantee required.
    pub expected: String,
    /// What the watcher got.
    pub got: String,
}

impl fmt::Display for WatchViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] watcher {}", self.rule, self.watcher)?;
        if let Some(response) = self.response {
            write!(f, ", response {response}")?;
        }
        if let Some(event) = self.event {
            write!(f, ", event {event}")?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": expected {}, got {}", self.expected, self.got)
    }
}

/// The checker's answer for a well-formed history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchVerdict {
    /// Every watcher kept every guarantee.
    Ok,
    /// The first broken guarantee.
    Violation(Box<WatchViolation>),
}

/// A committed history the checker cannot judge against.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MalformedWatchHistory {
    /// The input line, when read from a file.
    pub line: Option<usize>,
    /// What was wrong.
    pub message: String,
}

/// Bytes as a quoted UTF-8 string when they are one, else as hex.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => format!("{text:?}"),
        Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>() + " (hex)",
    }
}
