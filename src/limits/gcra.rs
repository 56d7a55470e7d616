//! The Generic Cell Rate Algorithm (ITU-T I.371 §4.4.2, the "virtual scheduling" form), pure: a
//! [`Quota`] and one stored instant per key decide each request, with `now` as a parameter.
//!
//! Why GCRA rather than a token bucket: both admit the same traffic (a GCRA with a tolerance of
//! `burst` emission intervals *is* a token bucket of `burst` tokens refilled one per interval), but
//! GCRA keeps one number per key — the theoretical arrival time (TAT) of the next request — instead
//! of a token count *and* a refill timestamp. One number is one update under one lock in memory and
//! one `GET`/`SET` in Redis, and there is no refill step: time passing is the refill. It is exact (no
//! window edge where a fixed-window counter lets 2N through), and "when may I retry?" falls out of
//! the same subtraction.
//!
//! The arithmetic, in nanoseconds, with `T = period / count` (the emission interval) and
//! `τ = burst · T` (how far ahead of schedule a key may run):
//!
//! ```text
//! backlog   = max(TAT − now, 0)           how far ahead of schedule the key already is
//! allowed   ⇔ backlog + T ≤ τ             then TAT := now + backlog + T
//! retry     = backlog + T − τ             (refused) when one more request would fit
//! remaining = ⌊(τ − backlog − T) / T⌋     (allowed) requests that would still pass right now
//! ```
//! The verdict depends on the backlog alone, so the Redis script ([`super::redis`]) returns just
//! that and the verdict is computed here for both stores.

use std::fmt;
use std::time::Duration;

/// A rate: `count` requests per `period`, of which up to `burst` may arrive at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per period (`N` in `N/period`).
    pub count: u32,
    /// The period, e.g. one minute for `100/1m`.
    pub period: Duration,
    /// Requests a fresh key may send at once; `N` unless `,burst=M` says otherwise.
    pub burst: u32,
}

/// Why a `N/period[,burst=M]` value is not a quota; the config error names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("N/period with an optional ,burst=M, e.g. 100/1m or 5/1s,burst=10")]
    Syntax,
    #[error("a count and burst that are whole numbers above zero, at most one per nanosecond")]
    Count,
    #[error("a period above zero and at most one day, e.g. 1s, 10s, 1m, 1h")]
    Period,
}

/// What one decision says about a key, for the response and its `RateLimit` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Requests that would still be allowed right now (0 when refused).
    pub remaining: u32,
    /// When a refused request could first succeed (zero when allowed).
    pub retry_after: Duration,
    /// When the key is back to its full burst (the draft's "reset").
    pub reset: Duration,
}

/// Longer periods would hold a key's state for longer than a bounded cache can promise to.
const MAX_PERIOD: Duration = Duration::from_secs(86_400);

impl Quota {
    /// Parses `N/period` with an optional `,burst=M`: `100/1m`, `5/1s`, `10/s`, `600/1h,burst=50`.
    /// A period written as a bare unit (`s`, `m`, `h`) means one of it.
    pub fn parse(raw: &str) -> Result<Quota, QuotaError> {
        let (rate, burst) = match raw.split_once(',') {
            Some((rate, extra)) => {
                let value = extra
                    .trim()
                    .strip_prefix("burst")
                    .map(str::trim_start)
                    .and_then(|s| s.strip_prefix('='))
                    .ok_or(QuotaError::Syntax)?;
                (rate, Some(positive(value.trim())?))
            }
            None => (raw, None),
        };
        let (count, period) = rate.split_once('/').ok_or(QuotaError::Syntax)?;
        let count = positive(count.trim())?;
        let period = period.trim();
        let period = if !period.is_empty() && period.chars().all(|c| c.is_ascii_alphabetic()) {
            humantime::parse_duration(&format!("1{period}"))
        } else {
            humantime::parse_duration(period)
        }
        .map_err(|_| QuotaError::Period)?;
        if period.is_zero() || period > MAX_PERIOD {
            return Err(QuotaError::Period);
        }
        let quota = Quota {
            count,
            period,
            burst: burst.unwrap_or(count),
        };
        // More requests than nanoseconds per period would make the interval zero: no limit at all.
        if quota.interval_nanos() == 0 {
            return Err(QuotaError::Count);
        }
        Ok(quota)
    }

    /// `T`: the time one request "costs".
    pub fn interval_nanos(&self) -> u64 {
        let period = u64::try_from(self.period.as_nanos()).unwrap_or(u64::MAX);
        period / u64::from(self.count)
    }

    /// `τ`: how far ahead of schedule a key may run (`burst` intervals).
    pub fn tolerance_nanos(&self) -> u64 {
        self.interval_nanos().saturating_mul(u64::from(self.burst))
    }

    /// Decides a request for a key whose stored TAT is `tat` (`None`: never seen, or forgotten) at
    /// `now`, both nanoseconds on one clock. Returns the verdict and the TAT to store when allowed
    /// (a refusal costs the key nothing, so a client that keeps knocking is not locked out longer).
    pub fn check(&self, tat: Option<u64>, now: u64) -> (Verdict, Option<u64>) {
        let backlog = tat.map_or(0, |tat| tat.saturating_sub(now));
        let verdict = self.verdict(backlog);
        let stored = verdict
            .allowed
            .then(|| now.saturating_add(backlog + self.interval_nanos()));
        (verdict, stored)
    }

    /// The verdict for a key `backlog` nanoseconds ahead of schedule.
    pub fn verdict(&self, backlog: u64) -> Verdict {
        let interval = self.interval_nanos();
        decide(interval, self.tolerance_nanos(), backlog, 1)
    }

    /// `T` and `τ` in whole microseconds, for the Redis script: Lua numbers are doubles, and
    /// microseconds since the epoch fit in their 53 bits where nanoseconds do not.
    pub fn micros(&self) -> (u64, u64) {
        let interval = (self.interval_nanos() / 1000).max(1);
        (interval, interval.saturating_mul(u64::from(self.burst)))
    }

    /// The verdict for a key `backlog` microseconds ahead of schedule, on the [`Quota::micros`]
    /// scale (so it agrees with the script that decided it).
    pub fn verdict_micros(&self, backlog: u64) -> Verdict {
        let (interval, tolerance) = self.micros();
        decide(interval, tolerance, backlog, 1000)
    }
}

/// The rule itself, in ticks of `tick_nanos` nanoseconds.
fn decide(interval: u64, tolerance: u64, backlog: u64, tick_nanos: u64) -> Verdict {
    let duration = |ticks: u64| Duration::from_nanos(ticks.saturating_mul(tick_nanos));
    let after = backlog.saturating_add(interval);
    if after <= tolerance {
        Verdict {
            allowed: true,
            remaining: u32::try_from((tolerance - after) / interval).unwrap_or(u32::MAX),
            retry_after: Duration::ZERO,
            reset: duration(after),
        }
    } else {
        Verdict {
            allowed: false,
            remaining: 0,
            retry_after: duration(after - tolerance),
            reset: duration(backlog),
        }
    }
}

/// The normalised form, for the start-up log: `100/1m,burst=100`.
impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{},burst={}",
            self.count,
            humantime::format_duration(self.period),
            self.burst
        )
    }
}

fn positive(raw: &str) -> Result<u32, QuotaError> {
    raw.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(QuotaError::Count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn q(raw: &str) -> Quota {
        Quota::parse(raw).unwrap()
    }

    #[test]
    fn quotas_read_as_count_per_period_with_an_optional_burst() {
        for (raw, count, period, burst) in [
            ("100/1m", 100, 60, 100),
            ("5/1s", 5, 1, 5),
            ("10/s", 10, 1, 10),
            ("600/1h,burst=50", 600, 3600, 50),
            (" 3 / 10s , burst = 1 ", 3, 10, 1),
        ] {
            let expected = Quota {
                count,
                period: Duration::from_secs(period),
                burst,
            };
            assert_eq!(q(raw), expected, "{raw}");
        }
    }

    #[test]
    fn malformed_quotas_are_refused_with_what_is_wrong() {
        for (raw, why) in [
            ("100", QuotaError::Syntax),
            ("100/1m,bust=3", QuotaError::Syntax),
            ("0/1s", QuotaError::Count),
            ("-1/1s", QuotaError::Count),
            ("ten/1s", QuotaError::Count),
            ("5/1s,burst=0", QuotaError::Count),
            ("4000000000/1s", QuotaError::Count),
            ("5/0s", QuotaError::Period),
            ("5/2days", QuotaError::Period),
            ("5/soon", QuotaError::Period),
            ("5/", QuotaError::Period),
        ] {
            assert_eq!(Quota::parse(raw), Err(why), "{raw}");
        }
    }

    #[test]
    fn a_fresh_key_may_send_its_burst_at_once_and_no_more() {
        let quota = q("5/1s");
        let (mut tat, now) = (None, 100 * S);
        for remaining in (0..5).rev() {
            let (v, stored) = quota.check(tat, now);
            assert!(v.allowed);
            assert_eq!(v.remaining, remaining);
            tat = stored;
        }
        let (v, stored) = quota.check(tat, now);
        assert!(!v.allowed);
        assert_eq!(stored, None, "a refusal costs nothing");
        assert_eq!(v.retry_after, Duration::from_millis(200));
        assert_eq!(v.reset, Duration::from_secs(1));
    }

    #[test]
    fn the_rate_is_restored_one_interval_at_a_time() {
        // 10/1s with a burst of 2, after both were spent at t=0: (now, allowed, retry ms, remaining).
        let quota = q("10/1s,burst=2");
        let t = S / 10;
        let spent = Some(2 * t);
        for (now, allowed, retry_ms, remaining) in [
            (0, false, 100, 0),
            (t / 2, false, 50, 0),
            (t, true, 0, 0),
            (2 * t, true, 0, 1),
            (10 * t, true, 0, 1),
        ] {
            let (v, _) = quota.check(spent, now);
            assert_eq!(v.allowed, allowed, "at {now}");
            assert_eq!(v.retry_after, Duration::from_millis(retry_ms), "at {now}");
            assert_eq!(v.remaining, remaining, "at {now}");
        }
    }

    #[test]
    fn over_a_long_run_exactly_the_rate_plus_one_burst_passes() {
        // A client knocking every millisecond for 10 s at 5/1s,burst=3: 3 at once, then one every
        // 200 ms from 200 ms to 9.8 s.
        let quota = q("5/1s,burst=3");
        let mut tat = None;
        let mut passed = 0;
        for ms in 0..10_000u64 {
            let (v, stored) = quota.check(tat, ms * 1_000_000);
            if v.allowed {
                passed += 1;
                tat = stored;
            }
        }
        assert_eq!(passed, 3 + 49);
    }

    #[test]
    fn a_tat_in_the_past_counts_as_a_fresh_key() {
        let quota = q("1/1m");
        assert_eq!(quota.check(Some(0), 3600 * S), quota.check(None, 3600 * S));
        assert_eq!(quota.check(None, 3600 * S).1, Some(3660 * S));
    }

    #[test]
    fn the_microsecond_scale_decides_as_the_nanosecond_one() {
        let quota = q("5/1s,burst=2");
        assert_eq!(quota.micros(), (200_000, 400_000));
        for backlog_us in [0, 100_000, 200_000, 200_001, 399_999] {
            assert_eq!(
                quota.verdict_micros(backlog_us),
                quota.verdict(backlog_us * 1000),
                "{backlog_us}"
            );
        }
    }

    #[test]
    fn display_shows_the_normalised_quota() {
        assert_eq!(q("100/1m").to_string(), "100/1m,burst=100");
    }
}
