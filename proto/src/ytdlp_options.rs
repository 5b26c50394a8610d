//! The yt-dlp options an operator may add with `YTDLP_EXTRA_ARGS`. Everything else is refused by name: an option
//! that runs a command (`--exec`), writes elsewhere (`--output`, `--paths`), reads another config, loads plugins,
//! picks a downloader or a proxy of its own would undo the worker's isolation. Address-family and source-address
//! options are left out too: yt-dlp applies them to its connection to the worker's proxy on 127.0.0.1, where they
//! break every download (the worker's proxy makes the outside connections).

/// Allowed spellings, and whether each takes a value.
const ALLOWED: &[(&str, bool)] = &[
    ("--extractor-args", true),
    ("--impersonate", true),
    ("--format-sort", true),
    ("-S", true),
    ("--format-sort-force", false),
    ("--no-format-sort-force", false),
    ("--prefer-free-formats", false),
    ("--check-formats", false),
    ("--add-headers", true),
    ("--user-agent", true),
    ("--referer", true),
    ("--remote-components", true),
    ("--sleep-requests", true),
    ("--sleep-interval", true),
    ("--min-sleep-interval", true),
    ("--max-sleep-interval", true),
    ("--sleep-subtitles", true),
    ("--limit-rate", true),
    ("--throttled-rate", true),
    ("--concurrent-fragments", true),
    ("-N", true),
    ("--http-chunk-size", true),
    ("--extractor-retries", true),
    ("--retry-sleep", true),
    ("--geo-bypass", false),
    ("--no-geo-bypass", false),
    ("--geo-bypass-country", true),
    ("--xff", true),
    ("--legacy-server-connect", false),
];

/// Why a list of extra options was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The option is not on the allow-list.
    NotAllowed(String),
    /// The option needs a value and none followed.
    MissingValue(String),
    /// The option takes no value, yet `--opt=value` gave one.
    UnexpectedValue(String),
    /// A word that is neither an option nor the value of the one before it.
    Stray(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotAllowed(o) => write!(f, "{o} is not an allowed yt-dlp option (allowed: {})", allowed_list()),
            Refused::MissingValue(o) => write!(f, "{o} needs a value"),
            Refused::UnexpectedValue(o) => write!(f, "{o} takes no value"),
            Refused::Stray(w) => write!(f, "{w:?} is not an option"),
        }
    }
}

impl std::error::Error for Refused {}

/// The allowed options, comma-separated, for error messages and docs.
pub fn allowed_list() -> String {
    ALLOWED.iter().map(|(o, _)| *o).collect::<Vec<_>>().join(", ")
}

/// Checks words (already split as a shell would) against the allow-list.
pub fn check(words: &[String]) -> Result<(), Refused> {
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (word.as_str(), None),
        };
        if !name.starts_with('-') {
            return Err(Refused::Stray(word.clone()));
        }
        let Some((_, takes_value)) = ALLOWED.iter().find(|(o, _)| *o == name) else {
            return Err(Refused::NotAllowed(name.to_string()));
        };
        match (takes_value, inline) {
            (true, None) if words.next().is_none() => return Err(Refused::MissingValue(name.to_string())),
            (false, Some(_)) => return Err(Refused::UnexpectedValue(name.to_string())),
            _ => {}
        }
    }
    Ok(())
}

/// The name yt-dlp's `--js-runtimes` gives the JavaScript runtime at `path`, known by its file name (`YTDLP_JS_RUNTIME`);
/// `None` for a program that is none of them.
pub fn js_runtime_name(path: &std::path::Path) -> Option<&'static str> {
    match path.file_name()?.to_str()? {
        "deno" => Some("deno"),
        "node" | "nodejs" => Some("node"),
        "bun" => Some("bun"),
        "qjs" | "quickjs" => Some("quickjs"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn listed_options_pass_with_their_values() {
        let ok = words(&[
            "--extractor-args",
            "youtube:player_client=default,web_safari",
            "--impersonate=chrome",
            "-S",
            "res:720,codec:h264",
            "--prefer-free-formats",
            "--sleep-requests",
            "1",
        ]);
        assert_eq!(check(&ok), Ok(()));
        assert_eq!(check(&[]), Ok(()));
    }

    #[test]
    fn anything_that_escapes_the_sandbox_is_refused_by_name() {
        for bad in [
            "--exec",
            "--output",
            "-o",
            "--paths",
            "--proxy",
            "--config-locations",
            "--plugin-dirs",
            "--downloader",
            "--external-downloader",
            "--cookies-from-browser",
            "--batch-file",
            "--load-info-json",
            "--no-check-certificates",
            "--force-ipv6",
            "--source-address",
        ] {
            let err = check(&words(&[bad, "x"])).unwrap_err();
            assert_eq!(err, Refused::NotAllowed(bad.to_string()));
            assert!(
                err.to_string().starts_with(&format!("{bad} is not an allowed")),
                "{err}"
            );
        }
        assert_eq!(
            check(&words(&["--exec=touch /tmp/x"])),
            Err(Refused::NotAllowed("--exec".into()))
        );
    }

    #[test]
    fn values_must_be_where_options_need_them() {
        assert_eq!(
            check(&words(&["--impersonate"])),
            Err(Refused::MissingValue("--impersonate".into()))
        );
        assert_eq!(
            check(&words(&["--geo-bypass=yes"])),
            Err(Refused::UnexpectedValue("--geo-bypass".into()))
        );
        assert_eq!(
            check(&words(&["--geo-bypass", "stray"])),
            Err(Refused::Stray("stray".into()))
        );
    }
}
