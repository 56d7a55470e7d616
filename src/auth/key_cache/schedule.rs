//! When the key cache may fetch: the pacing rules of [`super::KeyCache`], as pure functions of the
//! clock readings the cache passes in.
//!
//! - Scheduled refreshes follow `JWKS_REFRESH_INTERVAL`, which a `Cache-Control: max-age`
//!   (RFC 9111 §5.2.2.1) may shorten but never below [`MAX_AGE_FLOOR`] ([`scheduled_interval`]),
//!   with ±10 % jitter ([`jitter`]); failed ones are retried with a capped exponential backoff
//!   ([`failure_backoff`]).
//! - While no keys have loaded, requests may start at most one attempt per [`FIRST_LOAD_MIN_GAP`]
//!   ([`first_load_wait`]).
//! - An unknown `kid` may trigger at most one fetch per `JWKS_MIN_REFRESH_INTERVAL`, counted over
//!   `kid`-triggered fetches only ([`kid_budget_allows`]).
//!
//! Times are tokio [`Instant`]s, so the tests run under the paused clock instead of sleeping.

use std::time::Duration;

use tokio::time::Instant;

/// How often a request may trigger a fetch while no keys have ever loaded.
pub const FIRST_LOAD_MIN_GAP: Duration = Duration::from_secs(1);
/// The shortest refresh interval a `Cache-Control: max-age` can ask for. An unknown `kid` is fetched
/// on first use anyway, so a shorter hint would only speed up noticing a *removed* key, at the cost
/// of one fetch per replica per hint (an IdP sending `max-age=1` would see every gate poll it every
/// second); a minute keeps that load negligible while a removed key stops within a minute.
pub const MAX_AGE_FLOOR: Duration = Duration::from_secs(60);
/// The longest gap between retries while the IdP is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long to wait for the next scheduled refresh after one that succeeded with this `max-age`.
/// `max-age=0` (which `no-store`/`no-cache` also parse to) is "do not cache", not "poll
/// continuously": it carries no hint, like an absent header. A hint can only shorten the
/// configured interval, and never below [`MAX_AGE_FLOOR`].
pub fn scheduled_interval(max_age: Option<Duration>, refresh_interval: Duration) -> Duration {
    match max_age.filter(|age| !age.is_zero()) {
        None => refresh_interval,
        Some(age) => age.max(MAX_AGE_FLOOR).min(refresh_interval),
    }
}

/// How long to wait before retrying after `failures` refreshes in a row have failed: 1 s, doubling,
/// at most [`MAX_BACKOFF`], so a gate started before its IdP notices it soon without hammering it.
pub(super) fn failure_backoff(failures: u32) -> Duration {
    Duration::from_secs(1 << failures.saturating_sub(1).min(5)).min(MAX_BACKOFF)
}

/// How long a request must wait, while no keys have loaded, before it may start an attempt.
pub(super) fn first_load_wait(last_attempt: Option<Instant>, now: Instant) -> Duration {
    last_attempt.map_or(Duration::ZERO, |at| {
        (at + FIRST_LOAD_MIN_GAP).saturating_duration_since(now)
    })
}

/// Whether an unknown `kid` may trigger a fetch now: at most one per `min_gap`, counted only over
/// `kid`-triggered fetches.
pub(super) fn kid_budget_allows(
    last_kid_fetch: Option<Instant>,
    min_gap: Duration,
    now: Instant,
) -> bool {
    last_kid_fetch.is_none_or(|at| now.saturating_duration_since(at) >= min_gap)
}

/// ±10 % so that a fleet of gates does not refresh in lockstep.
pub(super) fn jitter(d: Duration) -> Duration {
    let factor = 0.9 + rand::random::<f64>() * 0.2;
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_shortens_the_refresh_interval_down_to_the_floor_and_no_store_is_no_hint() {
        let secs = Duration::from_secs;
        let five_minutes = secs(300);
        let cases = [
            (None, five_minutes, five_minutes),
            (Some(Duration::ZERO), five_minutes, five_minutes), // no-store, no-cache, max-age=0
            (Some(secs(1)), five_minutes, MAX_AGE_FLOOR),
            (Some(secs(10)), five_minutes, MAX_AGE_FLOOR),
            (Some(secs(120)), five_minutes, secs(120)),
            (Some(secs(86_400)), five_minutes, five_minutes),
            // The configured interval stays the ceiling, even under the floor.
            (Some(secs(10)), secs(30), secs(30)),
            (Some(Duration::ZERO), secs(30), secs(30)),
        ];
        for (max_age, configured, expected) in cases {
            assert_eq!(
                scheduled_interval(max_age, configured),
                expected,
                "{max_age:?} {configured:?}"
            );
        }
    }

    #[test]
    fn failed_refreshes_back_off_from_one_second_doubling_up_to_thirty() {
        let secs = Duration::from_secs;
        let cases = [
            (1, secs(1)),
            (2, secs(2)),
            (3, secs(4)),
            (5, secs(16)),
            (6, MAX_BACKOFF),
            (u32::MAX, MAX_BACKOFF),
        ];
        for (failures, expected) in cases {
            assert_eq!(failure_backoff(failures), expected, "{failures}");
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let d = Duration::from_secs(300);
        for _ in 0..1_000 {
            let j = jitter(d);
            assert!(j >= d.mul_f64(0.9) && j <= d.mul_f64(1.1), "{j:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn request_triggered_fetches_are_paced_on_tokios_clock() {
        let gap = Duration::from_secs(10);
        let at = Instant::now();
        assert_eq!(first_load_wait(None, at), Duration::ZERO);
        assert!(kid_budget_allows(None, gap, at));
        tokio::time::advance(Duration::from_millis(400)).await;
        let now = Instant::now();
        assert_eq!(
            first_load_wait(Some(at), now),
            FIRST_LOAD_MIN_GAP - Duration::from_millis(400)
        );
        assert!(!kid_budget_allows(Some(at), gap, now));
        tokio::time::advance(gap).await;
        let later = Instant::now();
        assert_eq!(first_load_wait(Some(at), later), Duration::ZERO);
        assert!(kid_budget_allows(Some(at), gap, later));
    }
}
