//! yt-dlp's release date, read from its version: yt-dlp numbers releases by date (`2026.10.26`, nightly builds
//! `2026.10.26.123456`; PyPI and pip write `2026.1.5` for `2026.01.05`). The daemon, its alerts and doradurctl
//! share this reading.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian), the inverse of `time::utc_date`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The release day of a yt-dlp version, in days since 1970-01-01 (UTC), or `None` when the version is not a
/// date. Accepts what `yt-dlp --version` prints (`2026.10.26`, `2026.10.26.123456`), a channel prefix
/// (`nightly@2026.10.26.123456`) and PEP 440's spelling without leading zeros (`2026.1.5`).
pub fn release_day(version: &str) -> Option<i64> {
    let word = version.split_whitespace().next()?;
    let word = word.rsplit_once('@').map_or(word, |(_, v)| v);
    let mut parts = word.split('.');
    let mut number = |max_len: usize| -> Option<i64> {
        let p = parts.next()?;
        (!p.is_empty() && p.len() <= max_len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (y, m, d) = (number(4)?, number(2)?, number(2)?);
    // Anything after the day must be the nightly build's digits.
    if let Some(rest) = parts.next()
        && (rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || parts.next().is_some())
    {
        return None;
    }
    let plausible = (2000..=9999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m);
    plausible.then(|| days_from_civil(y, m, d))
}

/// `YYYY-MM-DD` of the release, or `None` when the version is not a date.
pub fn release_date(version: &str) -> Option<String> {
    release_day(version).map(|day| crate::time::utc_date(day * 86_400))
}

/// Whole days from the release (00:00 UTC of its day) to `now_s` (Unix seconds); 0 for a release dated in the
/// future (a clock behind, or a build of today). `None` when the version is not a date.
pub fn age_days(version: &str, now_s: i64) -> Option<u32> {
    let day = release_day(version)?;
    let age = now_s.div_euclid(86_400) - day;
    Some(u32::try_from(age.max(0)).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn versions_that_are_dates_give_their_day() {
        // 2026-10-26 is day 20_752 since the epoch.
        assert_eq!(release_day("2026.10.26"), Some(20_752));
        assert_eq!(release_date("2026.10.26").as_deref(), Some("2026-10-26"));
        assert_eq!(
            release_date("2026.10.26.123456").as_deref(),
            Some("2026-10-26"),
            "nightly"
        );
        assert_eq!(release_date("nightly@2026.10.26.123456").as_deref(), Some("2026-10-26"));
        assert_eq!(
            release_date("2026.1.5").as_deref(),
            Some("2026-01-05"),
            "PEP 440 spelling"
        );
        assert_eq!(release_date("2024.02.29").as_deref(), Some("2024-02-29"), "leap day");
        assert_eq!(release_date("2023.07.06\n").as_deref(), Some("2023-07-06"));
        assert_eq!(release_date("1970.01.01"), None, "before yt-dlp existed");
    }

    #[test]
    fn other_versions_have_no_date() {
        for v in [
            "",
            "yt-dlp",
            "1.2.3",
            "2026.13.01",
            "2026.02.30",
            "2023.02.29",
            "2026.10",
            "2026.10.26.x",
            "2026.10.26.1.2",
            "2026.10.26-dev",
            "02026.10.26",
            "2026.010.26",
        ] {
            assert_eq!(release_day(v), None, "{v:?}");
        }
    }

    #[test]
    fn the_age_counts_whole_days_since_the_release_day_began() {
        let released = 20_752 * DAY; // 2026-10-26 00:00:00 UTC
        assert_eq!(age_days("2026.10.26", released), Some(0));
        assert_eq!(age_days("2026.10.26", released + DAY - 1), Some(0));
        assert_eq!(age_days("2026.10.26", released + DAY), Some(1));
        assert_eq!(age_days("2026.10.26.235959", released + 61 * DAY + 5), Some(61));
        assert_eq!(age_days("2026.10.26", released - 3 * DAY), Some(0), "a clock behind");
        assert_eq!(age_days("2023.07.06", released), Some(1208), "Debian's 2023 yt-dlp");
        assert_eq!(age_days("unknown", released), None);
    }

    #[test]
    fn days_round_trip_through_the_calendar() {
        for day in (-1000..40_000).step_by(7) {
            let date = crate::time::utc_date(day * DAY);
            let (y, rest) = date.split_once('-').unwrap();
            let (m, d) = rest.split_once('-').unwrap();
            assert_eq!(
                days_from_civil(y.parse().unwrap(), m.parse().unwrap(), d.parse().unwrap()),
                day,
                "{date}"
            );
        }
    }
}
