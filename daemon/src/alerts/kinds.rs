//! The alert types of the contract, their fixed severities and titles.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertType {
    HighErrorRate,
    QueueBackup,
    PaymentFailure,
    YtdlpDown,
    DatabaseIssues,
    LowConversion,
    HighRetryRate,
    /// The spool's filesystem lacks room for the next download: tasks wait in the queue.
    DiskSpaceLow,
    /// The oldest yt-dlp a worker runs was released more than `ALERT_YTDLP_MAX_AGE_DAYS` ago: sites break old
    /// releases every few weeks.
    YtdlpOutdated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Severity::Warning => 0,
            Severity::Critical => 1,
        }
    }
}

impl AlertType {
    /// In the order of `metrics::catalog::ALERT_TYPES`.
    pub const ALL: [AlertType; 9] = [
        AlertType::HighErrorRate,
        AlertType::QueueBackup,
        AlertType::PaymentFailure,
        AlertType::YtdlpDown,
        AlertType::DatabaseIssues,
        AlertType::LowConversion,
        AlertType::HighRetryRate,
        AlertType::DiskSpaceLow,
        AlertType::YtdlpOutdated,
    ];

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

    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::HighErrorRate => "HighErrorRate",
            AlertType::QueueBackup => "QueueBackup",
            AlertType::PaymentFailure => "PaymentFailure",
            AlertType::YtdlpDown => "YtdlpDown",
            AlertType::DatabaseIssues => "DatabaseIssues",
            AlertType::LowConversion => "LowConversion",
            AlertType::HighRetryRate => "HighRetryRate",
            AlertType::DiskSpaceLow => "DiskSpaceLow",
            AlertType::YtdlpOutdated => "YtdlpOutdated",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).expect("in ALL")
    }

    /// The name as written, or in snake case (`high_error_rate`), any case.
    pub fn parse(s: &str) -> Option<AlertType> {
        let squashed: String = s.chars().filter(|c| *c != '_' && *c != '-').collect();
        Self::ALL
            .into_iter()
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

impl fmt::Display for AlertType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_metric_labels_and_parse_back() {
        let names: Vec<&str> = AlertType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, crate::metrics::catalog::ALERT_TYPES);
        for t in AlertType::ALL {
            assert_eq!(AlertType::parse(t.as_str()), Some(t));
        }
        assert_eq!(AlertType::parse("high_error_rate"), Some(AlertType::HighErrorRate));
        assert_eq!(AlertType::parse("queuebackup"), Some(AlertType::QueueBackup));
        assert_eq!(AlertType::parse("Nope"), None);
        assert_eq!(AlertType::parse(""), None);
    }
}
