//! Maps a failed yt-dlp run to the bounded error type, from its stderr.

use doradura_proto::types::ErrorType;

/// Phrases yt-dlp (and the sites it relays) print, checked in order: the first match wins.
const RULES: &[(ErrorType, &[&str])] = &[
    (
        ErrorType::DiskFull,
        &["no space left on device", "errno 28", "disk quota exceeded"],
    ),
    (
        ErrorType::TooLarge,
        // "File too large" is EFBIG: a write past the worker's RLIMIT_FSIZE (a stream that sent no length).
        &[
            "larger than max-filesize",
            "file is larger than",
            "file too large",
            "errno 27",
        ],
    ),
    (
        ErrorType::AgeRestricted,
        &[
            "confirm your age",
            "age-restricted",
            "age restricted",
            "inappropriate for some users",
        ],
    ),
    (
        ErrorType::GeoBlocked,
        &[
            "available in your country",
            "geo restrict",
            "geo-restrict",
            "blocked it in your country",
            "from your location",
        ],
    ),
    (
        ErrorType::AuthRequired,
        &[
            "sign in to confirm",
            "login required",
            "log in to",
            "please log in",
            "requires authentication",
            "members-only",
            "members only",
            "http error 401",
            "use --cookies",
            "private video",
        ],
    ),
    (
        ErrorType::UnsupportedUrl,
        &["unsupported url", "no suitable extractor", "is not a valid url"],
    ),
    (
        ErrorType::Unavailable,
        &[
            "video unavailable",
            "is unavailable",
            "not available",
            "has been removed",
            "http error 404",
            // The worker's proxy refused a private address (a redirect or a media URL).
            "forbidden by doradura",
            "http error 410",
            "http error 403",
            "does not exist",
            "no video formats found",
            "requested format is not available",
            "no subtitles",
        ],
    ),
    (
        ErrorType::Postprocessing,
        &[
            "postprocessing",
            "ffmpeg not found",
            "ffprobe not found",
            "conversion failed",
            "error opening output",
        ],
    ),
    (
        ErrorType::Network,
        &[
            "timed out",
            "connection refused",
            "connection reset",
            "name or service not known",
            "temporary failure in name resolution",
            "network is unreachable",
            "unable to download webpage",
            "incompleteread",
            "remote end closed connection",
            "http error 5",
            "http error 429",
            "ssl",
            "unable to connect",
        ],
    ),
];

pub fn classify(stderr: &str) -> ErrorType {
    let text = stderr.to_lowercase();
    // Errors are the lines yt-dlp marks as such; fall back to everything when none is.
    let errors: String = text
        .lines()
        .filter(|l| l.contains("error"))
        .collect::<Vec<_>>()
        .join("\n");
    let haystack = if errors.is_empty() { &text } else { &errors };
    RULES
        .iter()
        .find(|(_, phrases)| phrases.iter().any(|p| haystack.contains(p)))
        .map_or(ErrorType::Unknown, |(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_yt_dlp_messages() {
        for (stderr, want) in [
            (
                "ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404>)",
                ErrorType::Unavailable,
            ),
            (
                "ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
                ErrorType::Unavailable,
            ),
            (
                "ERROR: [youtube] abc: The uploader has not made this video available in your country",
                ErrorType::GeoBlocked,
            ),
            (
                "ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate for some users.",
                ErrorType::AgeRestricted,
            ),
            (
                "ERROR: [youtube] abc: Sign in to confirm you're not a bot. Use --cookies-from-browser",
                ErrorType::AuthRequired,
            ),
            (
                "ERROR: [instagram] abc: Requested content is not available, rate-limit reached or login required",
                ErrorType::AuthRequired,
            ),
            (
                "ERROR: Unsupported URL: https://example.com/nothing",
                ErrorType::UnsupportedUrl,
            ),
            (
                "ERROR: [generic] Unable to download webpage: <urlopen error [Errno 111] Connection refused>",
                ErrorType::Network,
            ),
            (
                "ERROR: unable to download video data: The read operation timed out",
                ErrorType::Network,
            ),
            (
                "[download] File is larger than max-filesize (5242880 bytes > 1048576 bytes). Aborting.",
                ErrorType::TooLarge,
            ),
            ("ERROR: Postprocessing: Conversion failed!", ErrorType::Postprocessing),
            (
                "ERROR: ffprobe and ffmpeg not found. Please install or provide the path",
                ErrorType::Postprocessing,
            ),
            (
                "ERROR: unable to write data: [Errno 28] No space left on device",
                ErrorType::DiskFull,
            ),
            (
                "ERROR: [youtube] abc: HTTP Error 503: Service Unavailable",
                ErrorType::Network,
            ),
            (
                "Traceback (most recent call last):\n  KeyError: 'x'",
                ErrorType::Unknown,
            ),
            ("", ErrorType::Unknown),
        ] {
            assert_eq!(classify(stderr), want, "{stderr}");
        }
    }

    #[test]
    fn warnings_do_not_outvote_the_error_line() {
        let stderr = "WARNING: [youtube] unable to download webpage: timed out, retrying\n\
                      ERROR: [youtube] abc: Video unavailable";
        assert_eq!(classify(stderr), ErrorType::Unavailable);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// Any stderr: never a panic, and the case of ASCII letters never changes the answer.
            #[test]
            fn classification_is_total_and_ignores_case(stderr in ".{0,400}") {
                prop_assert_eq!(classify(&stderr), classify(&stderr.to_ascii_uppercase()));
            }

            /// yt-dlp's 404 line is unavailable, whatever an informational line before it says: only lines
            /// that report an error are read when there is one.
            #[test]
            fn a_404_is_unavailable_whatever_surrounds_it(title in "[a-zA-Z0-9 .,!?]{0,80}") {
                prop_assume!(!title.to_lowercase().contains("error"));
                let stderr = format!("[generic] {title}\nERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found");
                prop_assert_eq!(classify(&stderr), ErrorType::Unavailable);
            }
        }
    }
}
