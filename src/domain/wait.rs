//! How long to wait, said the way a person says it, for the "try again in ..." of every
//! throttling message (and the `Retry-After` that goes with it).

use std::time::Duration;

/// Whole seconds to wait, rounded up and at least one: the `Retry-After` value.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// `wait` in words: "1 second", "45 seconds", "1 minute", "2 minutes", "1 hour"; rounded up
/// to the unit, so it never promises less than the wait.
pub fn wait_in_words(wait: Duration) -> String {
    let seconds = retry_after_seconds(wait);
    let (count, unit) = if seconds < 60 {
        (seconds, "second")
    } else if seconds < 3600 {
        (seconds.div_ceil(60), "minute")
    } else {
        (seconds.div_ceil(3600), "hour")
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

/// Minutes left of `left`, counted as the pod counts them down: started minutes count whole
/// ("15 min left" until 14 minutes remain), and at least one while any time is left.
pub fn whole_minutes_left(left: chrono::Duration) -> i64 {
    let ms = left.num_milliseconds();
    if ms <= 0 {
        0
    } else {
        ((ms + 59_999) / 60_000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_grammatical_and_never_shorter_than_said() {
        let words = |ms: u64| wait_in_words(Duration::from_millis(ms));
        assert_eq!(words(0), "1 second");
        assert_eq!(words(1_000), "1 second");
        assert_eq!(words(1_200), "2 seconds");
        assert_eq!(words(59_000), "59 seconds");
        assert_eq!(words(60_000), "1 minute");
        assert_eq!(words(61_000), "2 minutes");
        assert_eq!(words(120_000), "2 minutes");
        assert_eq!(words(3_600_000), "1 hour");
        assert_eq!(words(7_200_001), "3 hours");
        assert_eq!(retry_after_seconds(Duration::from_millis(29_980)), 30);
    }

    #[test]
    fn minutes_left_count_started_minutes_like_the_pod() {
        let left = |ms: i64| whole_minutes_left(chrono::Duration::milliseconds(ms));
        assert_eq!(left(15 * 60_000), 15);
        assert_eq!(
            left(15 * 60_000 - 3),
            15,
            "a few ms of clock skew is not a minute"
        );
        assert_eq!(left(14 * 60_000 + 1), 15);
        assert_eq!(left(14 * 60_000), 14);
        assert_eq!(left(1), 1);
        assert_eq!(left(0), 0);
    }
}
