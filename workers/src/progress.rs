//! Parses yt-dlp's `--newline` progress lines:
//! `[download]  42.0% of ~  1.20MiB at  3.40MiB/s ETA 00:01 (frag 1/3)`.

/// One progress report. Unknown values are `None`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub percent: f32,
    pub total_bytes: Option<u64>,
    pub speed_bytes_per_second: Option<f64>,
    pub eta_seconds: Option<u64>,
}

impl Progress {
    pub fn downloaded_bytes(&self) -> Option<u64> {
        self.total_bytes
            .map(|t| (t as f64 * f64::from(self.percent) / 100.0).round() as u64)
    }
}

/// `None` for any line that is not a progress line.
pub fn parse(line: &str) -> Option<Progress> {
    let rest = line.trim().strip_prefix("[download]")?.trim_start();
    let mut words = rest.split_whitespace().peekable();
    let percent: f32 = words.next()?.strip_suffix('%')?.parse().ok()?;
    if !(0.0..=100.0).contains(&percent) {
        return None;
    }
    let mut progress = Progress {
        percent,
        total_bytes: None,
        speed_bytes_per_second: None,
        eta_seconds: None,
    };
    while let Some(word) = words.next() {
        match word {
            "of" => {
                if words.peek() == Some(&"~") {
                    words.next();
                }
                progress.total_bytes = words
                    .next()
                    .and_then(|w| bytes(w.trim_start_matches('~')))
                    .map(|b| b as u64);
            }
            "at" => progress.speed_bytes_per_second = words.next().and_then(|w| bytes(w.strip_suffix("/s")?)),
            "ETA" => progress.eta_seconds = words.next().and_then(clock),
            _ => {}
        }
    }
    Some(progress)
}

/// `1.20MiB` → bytes.
fn bytes(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some(n * mult)
}

/// `01:02:03`, `02:03` or `03` → seconds.
fn clock(s: &str) -> Option<u64> {
    s.split(':')
        .try_fold(0u64, |acc, part| Some(acc * 60 + part.parse::<u64>().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_lines() {
        let p = parse("[download]  42.0% of    1.20MiB at    3.40MiB/s ETA 00:01").unwrap();
        assert_eq!(p.percent, 42.0);
        assert_eq!(p.total_bytes, Some(1_258_291));
        assert_eq!(p.speed_bytes_per_second, Some(3.4 * 1024.0 * 1024.0));
        assert_eq!(p.eta_seconds, Some(1));
        assert_eq!(p.downloaded_bytes(), Some(528_482));
    }

    #[test]
    fn estimates_unknowns_fragments_and_the_final_line() {
        let p = parse("[download]   0.0% of ~  10.00MiB at  Unknown B/s ETA Unknown (frag 0/5)").unwrap();
        assert_eq!(p.total_bytes, Some(10 * 1024 * 1024));
        assert_eq!((p.speed_bytes_per_second, p.eta_seconds), (None, None));
        let p = parse("[download] 100% of    1.20MiB in 00:00:00 at 5.55MiB/s").unwrap();
        assert_eq!(p.percent, 100.0);
        assert!(p.speed_bytes_per_second.is_some());
        let p = parse("[download]  12.5% of ~1.00GiB at 1.00KiB/s ETA 1:02:03").unwrap();
        assert_eq!(p.eta_seconds, Some(3723));
        assert_eq!(p.total_bytes, Some(1 << 30));
    }

    #[test]
    fn other_lines_are_not_progress() {
        for line in [
            "[download] Destination: /tmp/x.mp4",
            "[download] /tmp/x.mp4 has already been downloaded",
            "[generic] Extracting URL: http://x",
            "[download] 101% of 1MiB",
            "[download] -1% of 1MiB",
            "[download] NaN% of 1MiB",
            "",
            "garbage \u{0}\u{7f}",
        ] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// Any line yt-dlp (or a site's title in its output) could print: never a panic, never a percentage
            /// outside 0..=100, never a size the progress bar could not show.
            #[test]
            fn any_line_gives_a_sane_report_or_none(line in ".{0,200}|\\[download\\] .{0,100}") {
                if let Some(p) = parse(&line) {
                    prop_assert!((0.0..=100.0).contains(&p.percent));
                    prop_assert!(p.speed_bytes_per_second.is_none_or(|s| s.is_finite() && s >= 0.0));
                    let _ = p.downloaded_bytes();
                }
            }

            #[test]
            fn a_well_formed_line_reads_back(tenths in 0u32..=1000, mib in 1u32..5000, eta in 0u32..3600) {
                let line = format!(
                    "[download] {:5.1}% of {}.00MiB at 1.00MiB/s ETA {:02}:{:02}",
                    f64::from(tenths) / 10.0, mib, eta / 60, eta % 60
                );
                let p = parse(&line).expect("parses");
                prop_assert!((f64::from(p.percent) - f64::from(tenths) / 10.0).abs() < 0.01);
                prop_assert_eq!(p.total_bytes, Some(u64::from(mib) * 1024 * 1024));
                prop_assert_eq!(p.eta_seconds, Some(u64::from(eta)));
            }
        }
    }
}
