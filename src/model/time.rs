//! Times as the collector keeps them (Unix seconds) and as reports and plan files write them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (what the collector keeps of a modification time).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// `t` in Unix seconds, as judged against `cutoff`: a time after the cutoff is never counted in
/// the cutoff's own second (it counts as the second after), so that comparing whole seconds
/// (`seconds > unix_seconds(cutoff)`) tells "written after the cutoff" exactly, at the precision
/// the store kept `t`. A time on a whole second in the cutoff's second, which a store that keeps
/// whole seconds (S3, Azure) gives for anything written in that second, cannot be told from one
/// after the cutoff: it counts as after.
pub fn seconds_against(t: SystemTime, cutoff: SystemTime) -> i64 {
    let (s, second) = (unix_seconds(t), unix_seconds(cutoff));
    let whole = t
        .duration_since(UNIX_EPOCH)
        .is_ok_and(|d| d.subsec_nanos() == 0);
    if t > cutoff || (whole && s == second && t != cutoff) {
        s.max(second + 1)
    } else {
        s
    }
}

/// Unix seconds as RFC 3339 in UTC, to the second (`2026-01-02T03:04:05Z`); before 1970 reads as 1970.
pub fn rfc3339(seconds: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
