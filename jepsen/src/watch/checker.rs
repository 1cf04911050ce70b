//! The checking walk: index the committed history once, then replay each watcher's responses
//! against the events its request selects, in delivery order, stopping at the first broken
//! guarantee.
//!
//! Every committed event gets a position (revision order, then order within the revision), so
//! "ordered", "unique" and "no gaps" become statements about positions: a watcher must deliver
//! exactly the selected positions, each once, increasing, with none skipped.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Commit, Event, EventType, KeyValue, MalformedWatchHistory, Revision, Rule, WatchHistory,
    WatchResponse, WatchVerdict, WatchViolation, Watcher, show_bytes,
};

/// Checks every watcher of `history`; the first broken guarantee is the verdict.
pub fn check(history: &WatchHistory) -> Result<WatchVerdict, MalformedWatchHistory> {
    let index = Index::build(&history.commits)?;
    for watcher in &history.watchers {
        let walk = Walk::new(&index, &history.compactions, watcher);
        if let Err(violation) = walk.run() {
            return Ok(WatchVerdict::Violation(Box::new(violation)));
        }
    }
    Ok(WatchVerdict::Ok)
}

/// One committed event and the key's state just before it.
struct Committed<'a> {
    event: &'a Event,
    prev: Option<KeyValue>,
}

/// The committed events by position, and positions by `(revision, key)`.
struct Index<'a> {
    events: Vec<Committed<'a>>,
    by_revision_key: BTreeMap<(Revision, &'a [u8]), usize>,
}

impl<'a> Index<'a> {
    fn build(commits: &'a [Commit]) -> Result<Self, MalformedWatchHistory> {
        let mut index = Index {
            events: Vec::new(),
            by_revision_key: BTreeMap::new(),
        };
        let mut state: BTreeMap<&[u8], &KeyValue> = BTreeMap::new();
        let mut previous: Revision = 0;
        for commit in commits {
            let malformed = |message: String| MalformedWatchHistory {
                line: commit.line,
                message,
            };
            if commit.revision <= previous {
                return Err(malformed(format!(
                    "expected commit revisions to increase, but revision {} follows {previous}",
                    commit.revision
                )));
            }
            previous = commit.revision;
            for event in &commit.events {
                let key = event.kv.key.as_slice();
                if event.kv.mod_revision != commit.revision {
                    return Err(malformed(format!(
                        "expected the events of revision {} to have that mod_revision, but {event} has {}",
                        commit.revision, event.kv.mod_revision
                    )));
                }
                let position = index.events.len();
                if index
                    .by_revision_key
                    .insert((commit.revision, key), position)
                    .is_some()
                {
                    return Err(malformed(format!(
                        "key {} changes twice in revision {}",
                        show_bytes(key),
                        commit.revision
                    )));
                }
                let prev = event
                    .prev_kv
                    .clone()
                    .or_else(|| state.get(key).map(|kv| (*kv).clone()));
                match event.kind {
                    EventType::Put => state.insert(key, &event.kv),
                    EventType::Delete => state.remove(key),
                };
                index.events.push(Committed { event, prev });
            }
        }
        Ok(index)
    }

    fn position(&self, event: &Event) -> Option<usize> {
        self.by_revision_key
            .get(&(event.kv.mod_revision, event.kv.key.as_slice()))
            .copied()
    }

    fn revision(&self, position: usize) -> Revision {
        self.events[position].event.kv.mod_revision
    }
}

/// Where in a watcher's responses an event was delivered: (response, event) indices.
type Place = (usize, usize);

/// One watcher's replay.
struct Walk<'a> {
    index: &'a Index<'a>,
    compactions: &'a [Revision],
    watcher: &'a Watcher,
    /// Positions the request selects, increasing (for start 0: from any revision).
    selected: Vec<usize>,
    /// Selected positions a watcher may miss: deletions at a recorded compaction's revision.
    optional: BTreeSet<usize>,
    /// Where each committed position is first delivered (for telling reorders from gaps).
    delivered_at: BTreeMap<usize, Place>,
    /// Positions delivered so far.
    seen: BTreeSet<usize>,
    /// The index in `selected` of the next event due.
    next: usize,
    /// The last position delivered, and the response it came in.
    last: Option<(usize, usize)>,
    /// `next` points at the first event due (always, for a start revision > 0).
    aligned: bool,
}

type Checked = Result<(), WatchViolation>;

impl<'a> Walk<'a> {
    fn new(index: &'a Index<'a>, compactions: &'a [Revision], watcher: &'a Watcher) -> Self {
        let request = &watcher.request;
        let selected = (0..index.events.len())
            .filter(|&p| {
                let event = index.events[p].event;
                request.covers(&event.kv.key)
                    && request.passes(event.kind)
                    && event.kv.mod_revision >= request.start_revision
            })
            .collect::<Vec<usize>>();
        let optional = selected
            .iter()
            .copied()
            .filter(|&p| {
                let event = index.events[p].event;
                event.kind == EventType::Delete && compactions.contains(&event.kv.mod_revision)
            })
            .collect();
        let mut delivered_at = BTreeMap::new();
        for (r, response) in watcher.responses.iter().enumerate() {
            for (e, event) in response.events.iter().enumerate() {
                if let Some(p) = index.position(event) {
                    delivered_at.entry(p).or_insert((r, e));
                }
            }
        }
        Walk {
            index,
            compactions,
            watcher,
            selected,
            optional,
            delivered_at,
            seen: BTreeSet::new(),
            next: 0,
            last: None,
            aligned: watcher.request.start_revision > 0,
        }
    }

    fn start(&self) -> Revision {
        self.watcher.request.start_revision
    }

    fn run(mut self) -> Checked {
        let start = self.start();
        if start > 0 && start < self.watcher.compacted_before {
            return self.compacted_start();
        }
        for (r, response) in self.watcher.responses.iter().enumerate() {
            self.after_cancel(r)?;
            if response.canceled && !response.events.is_empty() {
                let rule = if response.compact_revision != 0 {
                    Rule::Compaction
                } else {
                    Rule::Canceled
                };
                return Err(self.violation(
                    rule,
                    Some((r, 0)),
                    "a cancel without events".into(),
                    response.events[0].to_string(),
                ));
            }
            for (e, event) in response.events.iter().enumerate() {
                self.event((r, e), event)?;
            }
            if response.canceled && response.compact_revision != 0 {
                self.compaction_cancel(r, response)?;
            }
            if response.is_progress_notify() {
                self.progress(r, response.header_revision)?;
            }
        }
        self.nothing_left_behind()
    }

    /// A watch from a compacted revision: canceled with `compact_revision`, no events.
    fn compacted_start(&self) -> Checked {
        let compacted = self.watcher.compacted_before;
        let expected = format!(
            "a cancel with compact_revision >= {compacted} and no events (start revision {} was compacted)",
            self.start()
        );
        for (r, response) in self.watcher.responses.iter().enumerate() {
            if let Some(event) = response.events.first() {
                return Err(self.violation(
                    Rule::Compaction,
                    Some((r, 0)),
                    expected,
                    event.to_string(),
                ));
            }
            if !response.canceled {
                continue;
            }
            if response.compact_revision < compacted {
                let got = format!(
                    "a cancel with compact_revision {}",
                    response.compact_revision
                );
                return Err(self.violation(Rule::Compaction, Some((r, 0)), expected, got));
            }
            self.recorded_compaction(r, response.compact_revision)?;
            return self.after_cancel_response(r);
        }
        Err(self.violation(Rule::Compaction, None, expected, "no cancel".into()))
    }

    /// No response may follow the cancel at `r`.
    fn after_cancel_response(&self, r: usize) -> Checked {
        match self.watcher.responses.get(r + 1) {
            Some(_) => self.after_cancel(r + 1),
            None => Ok(()),
        }
    }

    fn after_cancel(&self, r: usize) -> Checked {
        if r == 0 || !self.watcher.responses[r - 1].canceled {
            return Ok(());
        }
        Err(self
            .violation(
                Rule::Canceled,
                Some((r, 0)),
                format!("no response after the cancel in response {}", r - 1),
                format!("response {r}"),
            )
            .without_event())
    }

    fn compaction_cancel(&self, r: usize, response: &WatchResponse) -> Checked {
        let needed = match self.last {
            Some((p, _)) => self.index.revision(p) + 1,
            None => self.start(),
        }
        .max(self.start());
        if needed > 0 && needed >= response.compact_revision {
            return Err(self
                .violation(
                    Rule::Compaction,
                    Some((r, 0)),
                    format!(
                        "no compaction cancel: the next revision needed, {needed}, is not below it"
                    ),
                    format!(
                        "a cancel with compact_revision {}",
                        response.compact_revision
                    ),
                )
                .without_event());
        }
        self.recorded_compaction(r, response.compact_revision)
    }

    fn recorded_compaction(&self, r: usize, compact_revision: Revision) -> Checked {
        if self.compactions.contains(&compact_revision) {
            return Ok(());
        }
        Err(self
            .violation(
                Rule::Compaction,
                Some((r, 0)),
                format!(
                    "compact_revision to name a recorded compaction (recorded: {:?})",
                    self.compactions
                ),
                format!("compact_revision {compact_revision}"),
            )
            .without_event())
    }

    /// Every check of one delivered event, in this order: filter, resume (below the start),
    /// derivable, committed, unique/ordered/gaps, atomic, prev_kv. The first to fail is reported.
    fn event(&mut self, at: Place, event: &Event) -> Checked {
        self.filter(at, event)?;
        let start = self.start();
        if start > 0 && event.kv.mod_revision < start {
            return Err(self.violation(
                Rule::Resume,
                Some(at),
                format!("no event below the start revision {start}"),
                event.to_string(),
            ));
        }
        derivable(event).map_err(|expected| {
            self.violation(Rule::Derivable, Some(at), expected, describe(&event.kv))
        })?;
        let position = self.committed(at, event)?;
        self.in_order(at, event, position)?;
        self.atomic(at, position)?;
        self.prev_kv(at, event, position)?;
        self.seen.insert(position);
        self.last = Some((position, at.0));
        Ok(())
    }

    fn filter(&self, at: Place, event: &Event) -> Checked {
        let request = &self.watcher.request;
        if !request.covers(&event.kv.key) {
            let expected = format!(
                "keys in [{}, {})",
                show_bytes(&request.key),
                show_bytes(&request.range_end)
            );
            return Err(self.violation(Rule::Filter, Some(at), expected, event.to_string()));
        }
        if !request.passes(event.kind) {
            let expected = format!("no {} events (filtered)", event.kind);
            return Err(self.violation(Rule::Filter, Some(at), expected, event.to_string()));
        }
        Ok(())
    }

    fn committed(&self, at: Place, event: &Event) -> Result<usize, WatchViolation> {
        let Some(position) = self.index.position(event) else {
            return Err(self.violation(
                Rule::Committed,
                Some(at),
                format!(
                    "a committed event (nothing changed {} at revision {})",
                    show_bytes(&event.kv.key),
                    event.kv.mod_revision
                ),
                event.to_string(),
            ));
        };
        let committed = self.index.events[position].event;
        if committed.kind != event.kind || committed.kv != event.kv {
            return Err(self.violation(
                Rule::Committed,
                Some(at),
                format!("{} {}", committed.kind, describe(&committed.kv)),
                format!("{} {}", event.kind, describe(&event.kv)),
            ));
        }
        Ok(position)
    }

    /// Unique, ordered, and no gaps (or a late start: resume) before `position`.
    fn in_order(&mut self, at: Place, event: &Event, position: usize) -> Checked {
        if self.seen.contains(&position) {
            let first = self.delivered_at[&position];
            let expected = format!(
                "each event once ({event} came already in response {}, event {})",
                first.0, first.1
            );
            return Err(self.violation(Rule::Unique, Some(at), expected, event.to_string()));
        }
        if let Some((last, _)) = self.last.filter(|&(last, _)| last > position) {
            let expected = format!("events after {}", self.index.events[last].event);
            return Err(self.violation(Rule::Ordered, Some(at), expected, event.to_string()));
        }
        self.align_from_now(Some(event.kv.mod_revision));
        self.skip_optional(self.index.revision(position), Some(position));
        let Some(&due) = self.selected.get(self.next) else {
            return Ok(()); // unreachable for a selected position: filter and resume ran first
        };
        if due != position {
            return Err(self.skipped(at, event, due));
        }
        self.next += 1;
        Ok(())
    }

    /// For a watch from now (start 0): point `next` at the first event due, once known. It
    /// is due from the first revision delivered, or from the created response's revision + 1
    /// if earlier (etcd fixes the start at or before that). False while still unknown.
    fn align_from_now(&mut self, delivered: Option<Revision>) -> bool {
        if self.aligned {
            return true;
        }
        let created = self
            .watcher
            .responses
            .first()
            .filter(|r| r.created)
            .map(|r| r.header_revision + 1);
        let Some(from) = delivered.into_iter().chain(created).min() else {
            return false;
        };
        self.next = self
            .selected
            .partition_point(|&p| self.index.revision(p) < from);
        self.aligned = true;
        true
    }

    /// Moves past the events due next that a watcher may miss (see `optional`), up to
    /// `revision` and short of `until`. etcd's compaction at `r` drops a key's tombstone at
    /// `r` (`keyIndex.compact`), so a watch from the compacted revision `r` (which etcd
    /// allows, and a resuming watcher may do) never sees a deletion at `r`.
    fn skip_optional(&mut self, revision: Revision, until: Option<usize>) {
        while let Some(&due) = self.selected.get(self.next) {
            let skippable = self.optional.contains(&due)
                && Some(due) != until
                && self.index.revision(due) <= revision;
            if !skippable {
                return;
            }
            self.next += 1;
        }
    }

    /// A progress notification at `revision`: every selected event up to it has come.
    fn progress(&mut self, r: usize, revision: Revision) -> Checked {
        if !self.align_from_now(None) {
            return Ok(());
        }
        self.skip_optional(revision, None);
        let Some(&due) = self.selected.get(self.next) else {
            return Ok(());
        };
        if self.index.revision(due) > revision {
            return Ok(());
        }
        Err(self
            .violation(
                Rule::NoGaps,
                Some((r, 0)),
                self.index.events[due].event.to_string(),
                format!("a progress notification at revision {revision}"),
            )
            .without_event())
    }

    /// `event` came while `due` (selected, earlier) had not: a reorder, a late start or a gap.
    fn skipped(&self, at: Place, event: &Event, due: usize) -> WatchViolation {
        let due_event = self.index.events[due].event;
        if let Some(&(r, e)) = self.delivered_at.get(&due) {
            let expected = format!("{due_event} (delivered later, response {r} event {e}) first");
            return self.violation(Rule::Ordered, Some(at), expected, event.to_string());
        }
        if self.last.is_none() && self.start() > 0 {
            let expected = format!(
                "the watch from revision {} to begin with {due_event}",
                self.start()
            );
            return self.violation(Rule::Resume, Some(at), expected, event.to_string());
        }
        self.violation(
            Rule::NoGaps,
            Some(at),
            due_event.to_string(),
            event.to_string(),
        )
    }

    fn atomic(&self, at: Place, position: usize) -> Checked {
        let Some((last, last_response)) = self.last else {
            return Ok(());
        };
        let revision = self.index.revision(position);
        let fragmented = (last_response..at.0).all(|r| self.watcher.responses[r].fragment);
        if self.index.revision(last) != revision || fragmented {
            return Ok(());
        }
        Err(self.violation(
            Rule::Atomic,
            Some(at),
            format!(
                "every event of revision {revision} in response {last_response} (not fragmented)"
            ),
            format!("{} in response {}", self.index.events[position].event, at.0),
        ))
    }

    fn prev_kv(&self, at: Place, event: &Event, position: usize) -> Checked {
        let expected = if self.watcher.request.prev_kv {
            self.index.events[position].prev.as_ref()
        } else {
            None
        };
        if event.prev_kv.as_ref() == expected || self.prev_compacted(event) {
            return Ok(());
        }
        let show = |kv: Option<&KeyValue>| kv.map_or_else(|| "no prev_kv".into(), describe);
        let expected = match (self.watcher.request.prev_kv, expected) {
            (false, _) => "no prev_kv (not requested)".into(),
            (true, kv) => format!("prev_kv {}", show(kv)),
        };
        Err(self.violation(
            Rule::PrevKv,
            Some(at),
            expected,
            format!("{} for {event}", show(event.prev_kv.as_ref())),
        ))
    }

    /// A requested `prev_kv` may be missing when the revision before the event was compacted:
    /// etcd reads it with a Range at `mod_revision - 1`, which a compaction above that
    /// revision refuses (`serverWatchStream.sendLoop`), and then sends the event without it.
    /// The history does not say when compactions completed relative to deliveries, so any
    /// recorded compaction above that revision excuses the omission.
    fn prev_compacted(&self, event: &Event) -> bool {
        self.watcher.request.prev_kv
            && event.prev_kv.is_none()
            && self
                .compactions
                .iter()
                .any(|&c| c > event.kv.mod_revision - 1)
    }

    /// After the last response: every selected event up to the last revision reached came.
    fn nothing_left_behind(&self) -> Checked {
        let Some((last, last_response)) = self.last else {
            return Ok(());
        };
        let trailing_fragment = self.watcher.responses.last().is_some_and(|r| r.fragment);
        let reached = self.index.revision(last);
        let Some(&due) = self.selected[self.next.min(self.selected.len())..]
            .iter()
            .find(|&&p| !(self.optional.contains(&p) && self.index.revision(p) <= reached))
        else {
            return Ok(());
        };
        if trailing_fragment || self.index.revision(due) > reached {
            return Ok(());
        }
        Err(self
            .violation(
                Rule::NoGaps,
                Some((last_response, 0)),
                self.index.events[due].event.to_string(),
                format!(
                    "no more events after {} (the last response)",
                    self.index.events[last].event
                ),
            )
            .without_event())
    }

    fn violation(
        &self,
        rule: Rule,
        at: Option<Place>,
        expected: String,
        got: String,
    ) -> WatchViolation {
        let response = at.map(|(r, _)| r);
        let line = match response {
            Some(r) => self.watcher.responses.get(r).and_then(|r| r.line),
            None => self.watcher.line,
        };
        WatchViolation {
            rule,
            watcher: self.watcher.id,
            response,
            event: at.map(|(_, e)| e),
            line,
            expected,
            got,
        }
    }
}

impl WatchViolation {
    fn without_event(mut self) -> Self {
        self.event = None;
        self
    }
}

/// A put's create/mod revisions and version agree: `version == 1` iff it created the key.
fn derivable(event: &Event) -> Result<(), String> {
    if event.kind != EventType::Put {
        return Ok(());
    }
    let kv = &event.kv;
    let created_here = kv.create_revision == kv.mod_revision;
    if (kv.version == 1) != created_here || kv.create_revision > kv.mod_revision {
        return Err(
            "a put with version 1 exactly when create_revision == mod_revision, and create_revision <= mod_revision"
                .into(),
        );
    }
    Ok(())
}

/// A key-value with every field, for expected-vs-got messages.
fn describe(kv: &KeyValue) -> String {
    format!(
        "{{key {}, value {}, create_revision {}, mod_revision {}, version {}, lease {}}}",
        show_bytes(&kv.key),
        show_bytes(&kv.value),
        kv.create_revision,
        kv.mod_revision,
        kv.version,
        kv.lease
    )
}
