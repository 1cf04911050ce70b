//! Injected bugs for simulation (FoundationDB's "buggify"): named switches that turn one
//! correct path of cairn into a known-wrong one, so that cairn-sim can prove it catches the
//! bug (the simulator "has teeth").
//!
//! Outside madsim every check is a constant `false` and [`set`] does not exist: production
//! code cannot turn a bug on. Under madsim the switches are off until the simulator turns
//! one on. They live in a thread-local: madsim runs a whole simulated cluster on one thread,
//! and every seed of a sweep runs on a thread of its own, so parallel runs never see each
//! other's switches.

/// A bug the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// The replica writes a Ready's entries and hard state without fsync, so a member may
    /// acknowledge (and vote for) what a power loss then erases.
    AckBeforeFsync,
    /// Linearizable reads skip the ReadIndex round and read the local state at once, so a
    /// follower or a deposed leader serves stale data.
    LocalReads,
    /// The watch fan-out of applied entries skips the events of an occasional revision
    /// (every [`DROPPED_WATCH_REVISION_PERIOD`]th) for every synced watcher, as if a
    /// response were lost: a watcher misses committed events.
    DropWatchEvent,
    /// Followers time leases too (from when they applied the grant, never seeing the
    /// leader's renewals) and propose revoking the ones they find expired, so a lease kept
    /// alive on the leader is revoked about one TTL after it was granted.
    LeaseExpiryOnFollower,
    /// A Compaction is applied at once by the member the client asked, without going
    /// through the log: the other members never compact that revision.
    CompactionWithoutLog,
}

/// With [`Bug::DropWatchEvent`] on, the fan-out drops the events of revisions that are a
/// multiple of this.
pub const DROPPED_WATCH_REVISION_PERIOD: i64 = 23;

impl Bug {
    /// Every bug, in a fixed order.
    pub const ALL: [Bug; 5] = [
        Bug::AckBeforeFsync,
        Bug::LocalReads,
        Bug::DropWatchEvent,
        Bug::LeaseExpiryOnFollower,
        Bug::CompactionWithoutLog,
    ];

    /// The switch's name on the simulator's command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeFsync => "ack-before-fsync",
            Bug::LocalReads => "local-reads",
            Bug::DropWatchEvent => "drop-watch-event",
            Bug::LeaseExpiryOnFollower => "lease-expiry-on-follower",
            Bug::CompactionWithoutLog => "compaction-without-log",
        }
    }

    /// The bug with this name, if any.
    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|bug| bug.name() == name)
    }

    #[cfg(madsim)]
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

#[cfg(madsim)]
thread_local! {
    static ENABLED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Turns `bug` on or off for the simulation running on this thread.
#[cfg(madsim)]
pub fn set(bug: Bug, on: bool) {
    ENABLED.with(|enabled| {
        let bits = enabled.get();
        enabled.set(if on {
            bits | bug.bit()
        } else {
            bits & !bug.bit()
        });
    });
}

/// Whether `bug` is on (always `false` outside madsim).
#[inline]
pub fn is_on(bug: Bug) -> bool {
    #[cfg(madsim)]
    {
        ENABLED.with(|enabled| enabled.get() & bug.bit() != 0)
    }
    #[cfg(not(madsim))]
    {
        let _ = bug;
        false
    }
}

/// [`Bug::AckBeforeFsync`] is on.
#[inline]
pub fn ack_before_fsync() -> bool {
    is_on(Bug::AckBeforeFsync)
}

/// [`Bug::LocalReads`] is on.
#[inline]
pub fn local_reads() -> bool {
    is_on(Bug::LocalReads)
}

/// [`Bug::DropWatchEvent`] is on and the fan-out must drop the events of `revision`.
#[inline]
pub fn drop_watch_event(revision: i64) -> bool {
    revision % DROPPED_WATCH_REVISION_PERIOD == 0 && is_on(Bug::DropWatchEvent)
}

/// [`Bug::LeaseExpiryOnFollower`] is on.
#[inline]
pub fn lease_expiry_on_follower() -> bool {
    is_on(Bug::LeaseExpiryOnFollower)
}

/// [`Bug::CompactionWithoutLog`] is on.
#[inline]
pub fn compaction_without_log() -> bool {
    is_on(Bug::CompactionWithoutLog)
}
