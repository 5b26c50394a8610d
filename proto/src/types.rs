//! Bounded value sets shared by the daemon, the workers and the CLI. They travel as strings on the wire and label
//! metrics, so each has exactly one spelling, defined here.

use std::fmt;

/// Generates `as_str`, `ALL`, `FromStr` and `Display` for a fieldless enum with one spelling per variant.
macro_rules! bounded {
    ($(#[$m:meta])* $name:ident ($kind:literal) { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The place of this value in `ALL`.
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(UnknownValue {
                    kind: $kind,
                    value: s.chars().take(40).collect(),
                    allowed: &[$($text),+],
                }) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A value outside a bounded set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub allowed: &'static [&'static str],
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?} (one of: {})",
            self.kind,
            self.value,
            self.allowed.join(", ")
        )
    }
}

impl std::error::Error for UnknownValue {}

bounded!(
    /// What the user gets.
    Format ("format") { Mp3 => "mp3", Mp4 => "mp4", Srt => "srt" }
);

bounded!(
    /// Queue priority; follows the requester's plan (vip, premium, free).
    Priority ("priority") { High => "high", Medium => "medium", Low => "low" }
);

bounded!(
    /// Why a download failed.
    ErrorType ("error type") {
        Unavailable => "unavailable",
        GeoBlocked => "geo_blocked",
        AgeRestricted => "age_restricted",
        AuthRequired => "auth_required",
        UnsupportedUrl => "unsupported_url",
        Network => "network",
        Timeout => "timeout",
        TooLarge => "too_large",
        Postprocessing => "postprocessing",
        DiskFull => "disk_full",
        YtdlpMissing => "ytdlp_missing",
        Cancelled => "cancelled",
        Unknown => "unknown",
    }
);

bounded!(
    /// Where a download task is (`download_tasks.state`; `doradurctl queue`). Queued and running are in flight; the
    /// others are final.
    TaskState ("task state") {
        Queued => "queued",
        Running => "running",
        Done => "done",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl TaskState {
    /// Still waiting for or held by a worker.
    pub fn is_in_flight(self) -> bool {
        matches!(self, TaskState::Queued | TaskState::Running)
    }
}

bounded!(
    /// Where a user's request for a task is (`task_requests.state`): waiting for its task, or answered.
    RequestState ("request state") {
        Waiting => "waiting",
        Delivered => "delivered",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

bounded!(
    /// The bounded `category` of an application error (`doradura_errors_total`).
    ErrorCategory ("error category") {
        Database => "database",
        TelegramApi => "telegram_api",
        Download => "download",
        Ytdlp => "ytdlp",
        Queue => "queue",
        Payment => "payment",
        Config => "config",
        Io => "io",
        Validation => "validation",
        Internal => "internal",
    }
);

bounded!(
    /// A bot command, user or admin (the `command` label of `doradura_command_usage_total`).
    CommandName ("command") {
        Start => "start",
        Help => "help",
        Settings => "settings",
        Cancel => "cancel",
        Plan => "plan",
        Analytics => "analytics",
        Health => "health",
        Metrics => "metrics",
        Revenue => "revenue",
        Refund => "refund",
        Export => "export",
        Alerts => "alerts",
    }
);

bounded!(
    /// Why a payment was refused or failed (the `reason` label of `doradura_payment_failure_total`).
    PaymentFailureReason ("payment failure reason") {
        InvalidPayload => "invalid_payload",
        WrongUser => "wrong_user",
        UnknownPlan => "unknown_plan",
        WrongAmount => "wrong_amount",
        Internal => "internal",
    }
);

bounded!(
    /// What was sent to Telegram (the `kind` label of `doradura_telegram_send_duration_seconds`).
    SendKind ("send kind") { Message => "message", Audio => "audio", Video => "video", Document => "document" }
);

bounded!(
    /// A section of `/metrics` in the bot and of `doradurctl metrics`.
    MetricsCategory ("metrics category") {
        Performance => "performance",
        Business => "business",
        Engagement => "engagement",
        System => "system",
    }
);

bounded!(
    /// How urgent an alert is (the `severity` label of the alert families).
    Severity ("severity") { Warning => "warning", Critical => "critical" }
);

bounded!(
    /// The alert types (the `alert_type` label, `alert_history.alert_type`, `doradurctl alerts`).
    AlertType ("alert type") {
        HighErrorRate => "HighErrorRate",
        QueueBackup => "QueueBackup",
        PaymentFailure => "PaymentFailure",
        YtdlpDown => "YtdlpDown",
        DatabaseIssues => "DatabaseIssues",
        LowConversion => "LowConversion",
        HighRetryRate => "HighRetryRate",
        /// The spool's filesystem lacks room for the next download: tasks wait in the queue.
        DiskSpaceLow => "DiskSpaceLow",
        /// The oldest yt-dlp a worker runs was released more than `ALERT_YTDLP_MAX_AGE_DAYS` ago: sites break old
        /// releases every few weeks.
        YtdlpOutdated => "YtdlpOutdated",
    }
);

impl AlertType {
    /// The periodic conditions; PaymentFailure is raised by the payment code instead.
    pub const EVALUATED: [AlertType; 8] = [
        AlertType::HighErrorRate,
        AlertType::QueueBackup,
        AlertType::YtdlpDown,
        AlertType::DatabaseIssues,
        AlertType::LowConversion,
        AlertType::HighRetryRate,
        AlertType::DiskSpaceLow,
        AlertType::YtdlpOutdated,
    ];

    /// The name as written, or in snake case (`high_error_rate`), any case.
    pub fn parse(s: &str) -> Option<AlertType> {
        let squashed: String = s.chars().filter(|c| *c != '_' && *c != '-').collect();
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str().eq_ignore_ascii_case(&squashed))
    }

    pub fn severity(self) -> Severity {
        match self {
            AlertType::QueueBackup | AlertType::LowConversion | AlertType::HighRetryRate | AlertType::YtdlpOutdated => {
                Severity::Warning
            }
            _ => Severity::Critical,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            AlertType::HighErrorRate => "High Error Rate Detected",
            AlertType::QueueBackup => "Download Queue Backing Up",
            AlertType::PaymentFailure => "Payment Needs Attention",
            AlertType::YtdlpDown => "yt-dlp Is Not Working",
            AlertType::DatabaseIssues => "Database Problems",
            AlertType::LowConversion => "Low Payment Conversion",
            AlertType::HighRetryRate => "High Retry Rate",
            AlertType::DiskSpaceLow => "Download Spool Low On Space",
            AlertType::YtdlpOutdated => "yt-dlp Is Out Of Date",
        }
    }
}

bounded!(
    /// What a worker slot is doing (its state's wire name), as operators see it: `/health`, `doradurctl status`, the `state` label of
    /// `doradura_workers`. The supervisor's own state machine (`supervisor::state::WorkerState`) carries more.
    WorkerPhase ("worker state") {
        Starting => "starting",
        Idle => "idle",
        Busy => "busy",
        Stopping => "stopping",
        Backoff => "backoff",
        CrashLoop => "crash_loop",
        Stopped => "stopped",
    }
);

impl WorkerPhase {
    /// Connected to the supervisor and able to take (or running) a task.
    pub fn is_connected(self) -> bool {
        matches!(self, WorkerPhase::Idle | WorkerPhase::Busy)
    }

    /// Waiting to be started again.
    pub fn is_waiting_to_start(self) -> bool {
        matches!(self, WorkerPhase::Backoff | WorkerPhase::CrashLoop)
    }
}

bounded!(
    /// Why a worker process ended or is about to be replaced (the `reason` label of worker restarts).
    RestartReason ("restart reason") {
        /// Exited with a non-zero code.
        ExitCode => "exit_code",
        /// Exited with code 0 while it was supposed to be running.
        CleanExit => "clean_exit",
        /// Killed by a signal the supervisor did not send.
        Signal => "signal",
        /// Stopped answering pings; the supervisor killed it.
        Heartbeat => "heartbeat",
        /// Never said hello; the supervisor killed it.
        HelloTimeout => "hello_timeout",
        /// Closed its stream while its process lived on; the supervisor killed it.
        StreamClosed => "stream_closed",
        /// The executable could not be started at all.
        SpawnFailed => "spawn_failed",
        /// Held its task past the supervisor's deadline (`DOWNLOAD_TIMEOUT` plus `TASK_DEADLINE_GRACE`) while
        /// still answering pings; the supervisor killed it.
        TaskDeadline => "task_deadline",
    }
);

impl ErrorType {
    /// Failures that may go away on their own and are worth another attempt.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorType::Network | ErrorType::Unknown)
    }
}

impl Priority {
    /// Lower runs first.
    pub fn rank(self) -> i64 {
        match self {
            Priority::High => 0,
            Priority::Medium => 1,
            Priority::Low => 2,
        }
    }
}

impl Format {
    /// The qualities this format accepts; the first is the default.
    pub fn qualities(self) -> &'static [&'static str] {
        match self {
            Format::Mp3 => &["320k", "256k", "192k", "128k"],
            Format::Mp4 => &["720p", "360p", "480p", "1080p", "best"],
            Format::Srt => &["none"],
        }
    }

    /// Checks `quality` for this format; empty means the default.
    pub fn quality(self, quality: &str) -> Result<&'static str, UnknownValue> {
        if quality.is_empty() {
            return Ok(self.qualities()[0]);
        }
        self.qualities()
            .iter()
            .copied()
            .find(|q| *q == quality)
            .ok_or_else(|| UnknownValue {
                kind: match self {
                    Format::Mp3 => "mp3 quality",
                    Format::Mp4 => "mp4 quality",
                    Format::Srt => "srt quality",
                },
                value: quality.chars().take(40).collect(),
                allowed: self.qualities(),
            })
    }

    /// The file extension of a finished download.
    pub fn extension(self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips() {
        for e in ErrorType::ALL {
            assert_eq!(e.as_str().parse::<ErrorType>().unwrap(), *e);
        }
        assert_eq!(ErrorType::ALL.len(), 13);
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>().unwrap(), *f);
        }
    }

    #[test]
    fn unknown_values_list_the_allowed_ones() {
        let err = "flac".parse::<Format>().unwrap_err();
        assert_eq!(err.to_string(), "unknown format \"flac\" (one of: mp3, mp4, srt)");
        let err = Format::Mp3.quality("999k").unwrap_err();
        assert!(err.to_string().contains("one of: 320k, 256k, 192k, 128k"), "{err}");
        assert_eq!(Format::Mp4.quality("").unwrap(), "720p");
        assert_eq!(Format::Srt.quality("none").unwrap(), "none");
        assert!(Format::Srt.quality("720p").is_err());
    }
}
