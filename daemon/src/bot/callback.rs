//! Inline button data: `dl:<format>[:<quality>]`, `cancel:<request>`, `set:<format>[:<quality>]`, `buy:<plan>`,
//! `plan:cancel`, and under `/analytics` `an:refresh` and `an:m:<category>`. Anything else (junk, forged, a
//! quality the format does not have, a category that does not exist) parses to `None`.

use doradura_proto::types::Format;

use crate::plans::Plan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Download { format: Format, quality: &'static str },
    Cancel { request: i64 },
    Setting { format: Format, quality: &'static str },
    Buy { plan: Plan },
    CancelPlan,
    Admin(AdminView),
}

/// A button under `/analytics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminView {
    Refresh,
    /// One of `admin_metrics::CATEGORIES`.
    Category(&'static str),
}

/// Telegram allows 64 bytes of callback data.
const MAX_LEN: usize = 64;

fn format_quality(rest: &str) -> Option<(Format, &'static str)> {
    let (format, quality) = rest.split_once(':').unwrap_or((rest, ""));
    let format: Format = format.parse().ok()?;
    Some((format, format.quality(quality).ok()?))
}

pub fn parse(data: &str) -> Option<Action> {
    if data.len() > MAX_LEN {
        return None;
    }
    let (kind, rest) = data.split_once(':')?;
    match kind {
        "dl" => format_quality(rest).map(|(format, quality)| Action::Download { format, quality }),
        "set" => format_quality(rest).map(|(format, quality)| Action::Setting { format, quality }),
        "buy" => Plan::parse(rest)
            .filter(|p| *p != Plan::Free)
            .map(|plan| Action::Buy { plan }),
        "plan" if rest == "cancel" => Some(Action::CancelPlan),
        "an" if rest == "refresh" => Some(Action::Admin(AdminView::Refresh)),
        "an" => {
            let category = rest.strip_prefix("m:")?;
            let known = crate::admin_metrics::CATEGORIES.iter().find(|c| **c == category)?;
            Some(Action::Admin(AdminView::Category(known)))
        }
        "cancel" => {
            let request: i64 = rest.parse().ok().filter(|r| *r > 0)?;
            (rest == request.to_string()).then_some(Action::Cancel { request })
        }
        _ => None,
    }
}

pub fn encode(action: &Action) -> String {
    match action {
        Action::Download { format, quality } => with_quality("dl", *format, quality),
        Action::Setting { format, quality } => with_quality("set", *format, quality),
        Action::Cancel { request } => format!("cancel:{request}"),
        Action::Buy { plan } => format!("buy:{}", plan.as_str()),
        Action::CancelPlan => "plan:cancel".to_string(),
        Action::Admin(AdminView::Refresh) => "an:refresh".to_string(),
        Action::Admin(AdminView::Category(c)) => format!("an:m:{c}"),
    }
}

fn with_quality(kind: &str, format: Format, quality: &str) -> String {
    if format == Format::Srt {
        format!("{kind}:srt")
    } else {
        format!("{kind}:{format}:{quality}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for a in [
            Action::Download {
                format: Format::Mp3,
                quality: "320k",
            },
            Action::Download {
                format: Format::Srt,
                quality: "none",
            },
            Action::Setting {
                format: Format::Mp4,
                quality: "best",
            },
            Action::Cancel { request: 12 },
            Action::Buy { plan: Plan::Vip },
            Action::CancelPlan,
            Action::Admin(AdminView::Refresh),
            Action::Admin(AdminView::Category("system")),
        ] {
            assert_eq!(parse(&encode(&a)), Some(a.clone()), "{}", encode(&a));
        }
        assert_eq!(
            encode(&Action::Download {
                format: Format::Mp3,
                quality: "320k"
            }),
            "dl:mp3:320k"
        );
        assert_eq!(
            parse("dl:mp4"),
            Some(Action::Download {
                format: Format::Mp4,
                quality: "720p"
            })
        );
    }

    #[test]
    fn junk_and_forgeries_parse_to_nothing() {
        for junk in [
            "",
            "dl",
            "dl:",
            "dl:flac:320k",
            "dl:mp3:999k",
            "dl:srt:720p",
            "cancel:",
            "cancel:abc",
            "cancel:-1",
            "cancel:0",
            "cancel:007",
            "cancel:1:2",
            "buy:free",
            "buy:gold",
            "plan:upgrade",
            "an:",
            "an:m:",
            "an:m:vanity",
            "an:m:system:1",
            "an:refresh:now",
            "rm:-rf",
            "dl:mp3:320k\u{0}",
            &"dl:mp3:".repeat(20),
        ] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
    }
}
