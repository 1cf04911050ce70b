//! This member's sense of time passing: the Raft ticker's period and the lease clock.
//!
//! In a deployment both follow the OS's monotonic clock. Under madsim every simulated host
//! shares one clock, so cairn-sim models a member whose clock runs fast or slow (a skewed
//! oscillator: its heartbeats, election timeouts and lease expiry all drift together) by
//! setting a rate for that member here; the skew is thread-local, as a simulated cluster
//! runs on one thread. Outside madsim the rate is always exact and this module is a plain
//! monotonic clock.

use std::time::Duration;

use tokio::time::Instant;

/// A monotonic clock for member `member_id`: time since it was created, as the member
/// perceives it.
#[derive(Debug)]
pub struct MemberClock {
    origin: Instant,
    #[cfg(madsim)]
    member_id: u64,
    /// Real time and perceived time at the last reading (a rate change applies from then).
    #[cfg(madsim)]
    last: (Duration, Duration),
}

impl MemberClock {
    /// A clock starting now.
    pub fn new(member_id: u64) -> Self {
        #[cfg(not(madsim))]
        let _ = member_id;
        MemberClock {
            origin: Instant::now(),
            #[cfg(madsim)]
            member_id,
            #[cfg(madsim)]
            last: (Duration::ZERO, Duration::ZERO),
        }
    }

    /// Time elapsed since the clock was created, as this member perceives it; never
    /// decreases.
    pub fn elapsed(&mut self) -> Duration {
        let real = self.origin.elapsed();
        #[cfg(madsim)]
        {
            let (last_real, last_perceived) = self.last;
            let step = scale(
                real.saturating_sub(last_real),
                sim_skew::get(self.member_id),
            );
            self.last = (real, last_perceived + step);
            self.last.1
        }
        #[cfg(not(madsim))]
        real
    }
}

/// How long `period` of this member's time lasts in real time (the Raft ticker's period).
pub fn real_period(member_id: u64, period: Duration) -> Duration {
    #[cfg(madsim)]
    {
        let ppm = sim_skew::get(member_id);
        let nanos = period.as_nanos() * 1_000_000 / (1_000_000 + i128::from(ppm)).max(1) as u128;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
    #[cfg(not(madsim))]
    {
        let _ = member_id;
        period
    }
}

/// `real` time as perceived by a clock `ppm` parts per million fast (negative: slow).
#[cfg(madsim)]
fn scale(real: Duration, ppm: i64) -> Duration {
    let nanos = real.as_nanos() as i128 * (1_000_000 + i128::from(ppm)) / 1_000_000;
    Duration::from_nanos(u64::try_from(nanos.max(0)).unwrap_or(u64::MAX))
}

/// Simulation-only: per-member clock rates, set by cairn-sim.
#[cfg(madsim)]
pub mod sim_skew {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        static SKEW: RefCell<BTreeMap<u64, i64>> = const { RefCell::new(BTreeMap::new()) };
    }

    /// Makes member `member_id`'s clock run `ppm` parts per million fast (negative: slow).
    pub fn set(member_id: u64, ppm: i64) {
        SKEW.with(|s| s.borrow_mut().insert(member_id, ppm));
    }

    /// Every member's clock exact again.
    pub fn clear() {
        SKEW.with(|s| s.borrow_mut().clear());
    }

    /// Member `member_id`'s skew in parts per million.
    pub fn get(member_id: u64) -> i64 {
        SKEW.with(|s| s.borrow().get(&member_id).copied().unwrap_or(0))
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use super::*;

    #[test]
    fn a_fast_clock_perceives_more_time_and_ticks_sooner() {
        assert_eq!(
            scale(Duration::from_secs(10), 50_000),
            Duration::from_millis(10_500)
        );
        assert_eq!(
            scale(Duration::from_secs(10), -50_000),
            Duration::from_millis(9_500)
        );
        sim_skew::set(7, 250_000);
        assert_eq!(
            real_period(7, Duration::from_millis(100)),
            Duration::from_millis(80)
        );
        assert_eq!(
            real_period(8, Duration::from_millis(100)),
            Duration::from_millis(100)
        );
        sim_skew::clear();
        assert_eq!(sim_skew::get(7), 0);
    }
}
