//! The conditions: thresholds from the configuration, and a pure evaluation of what was observed.

use std::time::Duration;

use super::kinds::AlertType;
use crate::config::Config;

/// Thresholds and windows; replaced on SIGHUP.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub error_rate_pct: f64,
    pub queue_depth: u64,
    pub retry_rate_pct: f64,
    pub conversion_pct: f64,
    /// Finished downloads (or attempts) a rate needs before it means anything.
    pub min_samples: u64,
    pub min_checkouts: u64,
    /// Consecutive downloads failing because yt-dlp cannot run.
    pub ytdlp_failures: u32,
    /// Days after its release from which a yt-dlp counts as out of date (`ALERT_YTDLP_MAX_AGE_DAYS`).
    pub ytdlp_max_age_days: u32,
    /// The sliding window of the error, retry and database conditions.
    pub window: Duration,
    pub throttle_error_rate: Duration,
    pub throttle_queue: Duration,
    pub throttle_other: Duration,
}

impl Rules {
    pub fn from_config(c: &Config) -> Rules {
        let a = &c.alerts;
        Rules {
            error_rate_pct: c.alert_error_rate_threshold,
            queue_depth: c.alert_queue_depth_threshold,
            retry_rate_pct: c.alert_retry_rate_threshold,
            conversion_pct: a.conversion_threshold,
            min_samples: a.min_samples,
            min_checkouts: a.conversion_min_checkouts,
            ytdlp_failures: a.ytdlp_failures,
            ytdlp_max_age_days: a.ytdlp_max_age_days,
            window: a.window,
            throttle_error_rate: a.throttle_error_rate,
            throttle_queue: a.throttle_queue,
            throttle_other: a.throttle_other,
        }
    }

    /// How long after a message of this type the next one waits. PaymentFailure is never throttled.
    pub fn throttle(&self, kind: AlertType) -> Duration {
        match kind {
            AlertType::HighErrorRate => self.throttle_error_rate,
            AlertType::QueueBackup => self.throttle_queue,
            AlertType::PaymentFailure => Duration::ZERO,
            // A warning that lasts days until someone updates: a reminder a day is enough.
            AlertType::YtdlpOutdated => self.throttle_other.max(Duration::from_secs(24 * 3600)),
            _ => self.throttle_other,
        }
    }
}

/// What the manager read for one evaluation. `None` where it could not be read (the database did not answer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Downloads finished in the window, and how many of them failed.
    pub downloads: Option<(u64, u64)>,
    pub queued: Option<u64>,
    /// Attempts of the tasks finished in the window, and how many of those were retries.
    pub attempts: Option<(u64, u64)>,
    /// Checkouts and payments in the last 24 hours.
    pub conversion: Option<(u64, u64)>,
    /// Connected workers, and how many of them have no working yt-dlp.
    pub workers: (u64, u64),
    /// The latest finished downloads all failed because yt-dlp could not run (at least `ytdlp_failures` of them).
    pub ytdlp_failing_streak: Option<u32>,
    /// Database errors counted in the window, and the write probe's error if it failed.
    pub database_errors: u64,
    pub database_probe: Option<String>,
    /// The spool's room for the next download, as the supervisor last measured it.
    pub spool: Option<crate::supervisor::spool::SpoolStatus>,
    /// The oldest yt-dlp the connected workers run, when its version is a release date.
    pub ytdlp_release: Option<YtdlpRelease>,
}

/// The oldest dated yt-dlp among the connected workers.
#[derive(Debug, Clone, PartialEq)]
pub struct YtdlpRelease {
    pub version: String,
    pub age_days: u32,
    /// Connected workers running this version, of `connected`.
    pub workers: u64,
    pub connected: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: AlertType,
    pub firing: bool,
    pub current: String,
    pub threshold: String,
    pub affected: String,
    pub details: String,
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// One finding per condition that could be evaluated.
pub fn evaluate(o: &Observation, r: &Rules) -> Vec<Finding> {
    let mut out = Vec::new();
    let window = minutes(r.window);
    if let Some((all, failed)) = o.downloads {
        let rate = pct(failed, all);
        out.push(Finding {
            kind: AlertType::HighErrorRate,
            firing: all >= r.min_samples && rate > r.error_rate_pct,
            current: format!("{rate:.1}%"),
            threshold: format!("{:.1}%", r.error_rate_pct),
            affected: format!("{failed}/{all} downloads"),
            details: format!(
                "Failed downloads in the last {window} (at least {} needed).",
                r.min_samples
            ),
        });
    }
    if let Some(queued) = o.queued {
        out.push(Finding {
            kind: AlertType::QueueBackup,
            firing: queued > r.queue_depth,
            current: format!("{queued} queued"),
            threshold: format!("{} queued", r.queue_depth),
            affected: format!("{queued} tasks waiting"),
            details: "Tasks are arriving faster than the workers finish them.".into(),
        });
    }
    let (connected, without) = o.workers;
    let streak = o.ytdlp_failing_streak.unwrap_or(0);
    out.push(Finding {
        kind: AlertType::YtdlpDown,
        firing: (connected > 0 && without > 0) || streak >= r.ytdlp_failures,
        current: format!("{without}/{connected} workers without yt-dlp"),
        threshold: "0 workers".into(),
        affected: format!("{streak} downloads in a row failed because yt-dlp could not run"),
        details: "Check YTDLP_PATH and that yt-dlp runs for the service user.".into(),
    });
    out.push(Finding {
        kind: AlertType::DatabaseIssues,
        firing: o.database_errors > 0 || o.database_probe.is_some(),
        current: format!("{} errors in {window}", o.database_errors),
        threshold: "0 errors".into(),
        affected: match &o.database_probe {
            Some(e) => format!("write check failed: {e}"),
            None => "write check passed".into(),
        },
        details: "Database reads or writes are failing: check the disk, permissions and locks.".into(),
    });
    if let Some(spool) = &o.spool {
        use crate::supervisor::spool::mib;
        out.push(Finding {
            kind: AlertType::DiskSpaceLow,
            firing: !spool.has_room(),
            current: match (spool.free_bytes, &spool.error) {
                (Some(free), _) => format!("{} free", mib(free)),
                (None, Some(e)) => format!("unknown ({e})"),
                (None, None) => "unknown".into(),
            },
            threshold: format!("{} free", mib(spool.required_bytes)),
            affected: match o.queued {
                Some(q) => format!("{q} tasks waiting; no new download starts"),
                None => "no new download starts".into(),
            },
            details: "The filesystem of DOWNLOAD_DIR needs MAX_FILE_SIZE_MB for each running download and the \
                      next, plus DOWNLOAD_MIN_FREE_MB. Free space there (df -h); nothing fails meanwhile."
                .into(),
        });
    }
    if let Some(y) = &o.ytdlp_release {
        let date = doradura_proto::ytdlp_release::release_date(&y.version).unwrap_or_default();
        out.push(Finding {
            kind: AlertType::YtdlpOutdated,
            firing: y.age_days > r.ytdlp_max_age_days,
            current: format!("{} days old", y.age_days),
            threshold: format!("{} days", r.ytdlp_max_age_days),
            affected: format!(
                "yt-dlp {} (released {date}) on {}/{} workers",
                y.version, y.workers, y.connected
            ),
            details: "Sites break old yt-dlp releases. Enable the updater (systemctl enable --now \
                      doradura-ytdlp-update.timer) or update the yt-dlp at YTDLP_PATH; workers notice a replaced \
                      yt-dlp by themselves, but a daemon started before the updater's first release needs one \
                      restart to use it."
                .into(),
        });
    }
    if let Some((checkouts, payments)) = o.conversion {
        let rate = pct(payments, checkouts);
        out.push(Finding {
            kind: AlertType::LowConversion,
            firing: checkouts >= r.min_checkouts && rate < r.conversion_pct,
            current: format!("{rate:.1}%"),
            threshold: format!("{:.1}%", r.conversion_pct),
            affected: format!("{payments}/{checkouts} checkouts paid"),
            details: format!(
                "Invoices sent in the last 24 h that were paid (at least {} checkouts needed).",
                r.min_checkouts
            ),
        });
    }
    if let Some((attempts, retries)) = o.attempts {
        let rate = pct(retries, attempts);
        out.push(Finding {
            kind: AlertType::HighRetryRate,
            firing: attempts >= r.min_samples && rate > r.retry_rate_pct,
            current: format!("{rate:.1}%"),
            threshold: format!("{:.1}%", r.retry_rate_pct),
            affected: format!("{retries}/{attempts} attempts were retries"),
            details: format!("Attempts of downloads finished in the last {window}."),
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The contract's defaults, for the tests of this module and of the state machine.
    pub(crate) fn rules() -> Rules {
        Rules {
            error_rate_pct: 5.0,
            queue_depth: 50,
            retry_rate_pct: 30.0,
            conversion_pct: 5.0,
            min_samples: 10,
            min_checkouts: 20,
            ytdlp_failures: 3,
            ytdlp_max_age_days: 60,
            window: Duration::from_secs(900),
            throttle_error_rate: Duration::from_secs(1800),
            throttle_queue: Duration::from_secs(900),
            throttle_other: Duration::from_secs(3600),
        }
    }

    fn find(o: &Observation, kind: AlertType) -> Finding {
        evaluate(o, &rules()).into_iter().find(|f| f.kind == kind).unwrap()
    }

    #[test]
    fn each_condition_fires_above_its_threshold_and_not_below_its_sample_count() {
        let mut o = Observation {
            downloads: Some((1000, 125)),
            ..Default::default()
        };
        let f = find(&o, AlertType::HighErrorRate);
        assert!(f.firing);
        assert_eq!((f.current.as_str(), f.threshold.as_str()), ("12.5%", "5.0%"));
        assert_eq!(f.affected, "125/1000 downloads");
        o.downloads = Some((9, 9));
        assert!(!find(&o, AlertType::HighErrorRate).firing, "too few samples");
        o.downloads = Some((100, 5));
        assert!(
            !find(&o, AlertType::HighErrorRate).firing,
            "at the threshold is not above it"
        );

        o.queued = Some(51);
        assert!(find(&o, AlertType::QueueBackup).firing);
        o.queued = Some(50);
        assert!(!find(&o, AlertType::QueueBackup).firing);

        o.conversion = Some((20, 0));
        assert!(find(&o, AlertType::LowConversion).firing);
        o.conversion = Some((19, 0));
        assert!(!find(&o, AlertType::LowConversion).firing);
        o.conversion = Some((20, 1));
        assert!(!find(&o, AlertType::LowConversion).firing, "5% is not below 5%");

        o.attempts = Some((10, 4));
        assert!(find(&o, AlertType::HighRetryRate).firing);
        o.attempts = Some((10, 3));
        assert!(!find(&o, AlertType::HighRetryRate).firing);

        assert!(!find(&o, AlertType::YtdlpDown).firing);
        o.workers = (2, 1);
        assert!(find(&o, AlertType::YtdlpDown).firing);
        o.workers = (2, 0);
        o.ytdlp_failing_streak = Some(3);
        assert!(find(&o, AlertType::YtdlpDown).firing);

        assert!(!find(&o, AlertType::DatabaseIssues).firing);
        o.database_errors = 1;
        assert!(find(&o, AlertType::DatabaseIssues).firing);
        o.database_errors = 0;
        o.database_probe = Some("database is locked".into());
        assert!(find(&o, AlertType::DatabaseIssues).firing);
    }

    #[test]
    fn disk_space_low_fires_while_the_spool_has_no_room_for_the_next_download() {
        use crate::supervisor::spool::SpoolStatus;
        const MIB: u64 = 1024 * 1024;
        let mut o = Observation {
            queued: Some(3),
            spool: Some(SpoolStatus {
                free_bytes: Some(100 * MIB),
                required_bytes: 562 * MIB,
                error: None,
            }),
            ..Default::default()
        };
        let f = find(&o, AlertType::DiskSpaceLow);
        assert!(f.firing);
        assert_eq!(
            (f.current.as_str(), f.threshold.as_str(), f.affected.as_str()),
            (
                "100 MiB free",
                "562 MiB free",
                "3 tasks waiting; no new download starts"
            )
        );
        assert_eq!(AlertType::DiskSpaceLow.severity().as_str(), "critical");
        o.spool = Some(SpoolStatus {
            free_bytes: Some(562 * MIB),
            required_bytes: 562 * MIB,
            error: None,
        });
        assert!(!find(&o, AlertType::DiskSpaceLow).firing, "exactly enough is enough");
        o.spool = Some(SpoolStatus {
            free_bytes: None,
            required_bytes: 562 * MIB,
            error: Some("statvfs /var/cache/doradura: EACCES".into()),
        });
        let f = find(&o, AlertType::DiskSpaceLow);
        assert!(f.firing, "a spool that cannot be measured takes no task");
        assert!(f.current.contains("EACCES"), "{}", f.current);
    }

    #[test]
    fn ytdlp_outdated_fires_once_the_oldest_release_is_past_the_maximum_age() {
        let mut o = Observation {
            ytdlp_release: Some(YtdlpRelease {
                version: "2026.08.01".into(),
                age_days: 61,
                workers: 1,
                connected: 2,
            }),
            ..Default::default()
        };
        let f = find(&o, AlertType::YtdlpOutdated);
        assert!(f.firing);
        assert_eq!(
            (f.current.as_str(), f.threshold.as_str(), f.affected.as_str()),
            (
                "61 days old",
                "60 days",
                "yt-dlp 2026.08.01 (released 2026-08-01) on 1/2 workers"
            )
        );
        assert!(f.details.contains("doradura-ytdlp-update.timer"), "{}", f.details);
        assert_eq!(AlertType::YtdlpOutdated.severity().as_str(), "warning");
        o.ytdlp_release.as_mut().unwrap().age_days = 60;
        assert!(!find(&o, AlertType::YtdlpOutdated).firing, "60 days is not past 60");
        // No dated yt-dlp (missing, or a build whose version is not a date): nothing to judge; YtdlpDown covers a
        // missing one.
        o.ytdlp_release = None;
        assert!(
            evaluate(&o, &rules())
                .iter()
                .all(|f| f.kind != AlertType::YtdlpOutdated)
        );
    }

    #[test]
    fn what_could_not_be_read_is_not_evaluated() {
        let kinds: Vec<AlertType> = evaluate(&Observation::default(), &rules())
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(kinds, [AlertType::YtdlpDown, AlertType::DatabaseIssues]);
    }
}
