//! Bounded value sets shared by the daemon, the workers and the CLI. They travel as strings on the wire and label
//! metrics, so each has exactly one spelling, defined here.

use std::fmt;

/// Generates `as_str`, `ALL`, `FromStr` and `Display` for a fieldless enum with one spelling per variant.
macro_rules! bounded {
    ($(#[$m:meta])* $name:ident ($kind:literal) { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
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
