//! The alert types of the contract, their fixed severities and titles: defined once in `doradura_proto::types`.

pub use doradura_proto::types::{AlertType, Severity};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_exactly_and_leniently() {
        assert_eq!(AlertType::ALL.len(), 9);
        for t in AlertType::ALL {
            assert_eq!(AlertType::parse(t.as_str()), Some(*t));
            assert_eq!(t.as_str().parse::<AlertType>(), Ok(*t));
        }
        assert_eq!(AlertType::parse("high_error_rate"), Some(AlertType::HighErrorRate));
        assert_eq!(AlertType::parse("queuebackup"), Some(AlertType::QueueBackup));
        assert_eq!(AlertType::parse("Nope"), None);
        assert_eq!(AlertType::parse(""), None);
        assert!(
            "high_error_rate".parse::<AlertType>().is_err(),
            "the wire name is exact"
        );
        let names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["warning", "critical"]);
    }
}
