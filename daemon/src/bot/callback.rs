//! Inline button data: `dl:<format>[:<quality>]`, `cancel:<request>`, `set:<format>[:<quality>]`, `buy:<plan>`,
//! `plan:cancel`, under `/analytics` `an:refresh` and `an:m:<category>`, and under an alert `al:s:<type>:<hours>`
//! (silence) and `al:ack:<history id>`. Anything else (junk, forged, a
//! quality the format does not have, a category that does not exist) parses to `None`.

use doradura_proto::types::{Format, MetricsCategory};

use crate::alerts::AlertType;
use crate::plans::Plan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Download {
        format: Format,
        quality: &'static str,
    },
    Cancel {
        request: i64,
    },
    Setting {
        format: Format,
        quality: &'static str,
    },
    Buy {
        plan: Plan,
    },
    CancelPlan,
    Admin(AdminView),
    /// Silence an alert type for 1, 4 or 24 hours.
    AlertSilence {
        kind: AlertType,
        hours: u8,
    },
    AlertAck {
        id: i64,
    },
}

/// The silences an alert's buttons offer, in hours.
pub const SILENCE_HOURS: [u8; 3] = [1, 4, 24];

/// A button under `/analytics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminView {
    Refresh,
    Category(MetricsCategory),
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
        "al" => {
            let (what, rest) = rest.split_once(':')?;
            match what {
                "ack" => positive(rest).map(|id| Action::AlertAck { id }),
                "s" => {
                    let (kind, hours) = rest.split_once(':')?;
                    let kind = *AlertType::ALL.get(kind.parse::<usize>().ok().filter(|_| kind.len() == 1)?)?;
                    let hours = SILENCE_HOURS.into_iter().find(|h| h.to_string() == hours)?;
                    Some(Action::AlertSilence { kind, hours })
                }
                _ => None,
            }
        }
        "an" => {
            let category = rest.strip_prefix("m:")?;
            // An unknown category is no action: the press is answered as stale.
            let known = category.parse::<MetricsCategory>().ok()?;
            Some(Action::Admin(AdminView::Category(known)))
        }
        "cancel" => positive(rest).map(|request| Action::Cancel { request }),
        _ => None,
    }
}

/// A positive id written canonically (no sign, no leading zeros).
fn positive(s: &str) -> Option<i64> {
    let n: i64 = s.parse().ok().filter(|n| *n > 0)?;
    (s == n.to_string()).then_some(n)
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
        Action::AlertSilence { kind, hours } => format!("al:s:{}:{hours}", kind.index()),
        Action::AlertAck { id } => format!("al:ack:{id}"),
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
            Action::Admin(AdminView::Category(MetricsCategory::System)),
            Action::AlertSilence {
                kind: AlertType::HighRetryRate,
                hours: 24,
            },
            Action::AlertAck { id: 12 },
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
            "al:s:0:2",
            &format!("al:s:{}:1", crate::alerts::AlertType::ALL.len()),
            "al:s:01:1",
            "al:s:0:01",
            "al:ack:0",
            "al:ack:-3",
            "al:ack:x",
            "al:mute:1",
            "rm:-rf",
            "dl:mp3:320k\u{0}",
            &"dl:mp3:".repeat(20),
        ] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn action() -> impl Strategy<Value = Action> {
            let format_quality = prop::sample::select(
                Format::ALL
                    .iter()
                    .flat_map(|f| f.qualities().iter().map(move |q| (*f, *q)))
                    .collect::<Vec<_>>(),
            );
            prop_oneof![
                format_quality
                    .clone()
                    .prop_map(|(format, quality)| Action::Download { format, quality }),
                format_quality.prop_map(|(format, quality)| Action::Setting { format, quality }),
                (1..i64::MAX).prop_map(|request| Action::Cancel { request }),
                prop::sample::select(vec![Plan::Premium, Plan::Vip]).prop_map(|plan| Action::Buy { plan }),
                Just(Action::CancelPlan),
                Just(Action::Admin(AdminView::Refresh)),
                prop::sample::select(MetricsCategory::ALL.to_vec()).prop_map(|c| Action::Admin(AdminView::Category(c))),
                (
                    prop::sample::select(AlertType::ALL.to_vec()),
                    prop::sample::select(SILENCE_HOURS.to_vec())
                )
                    .prop_map(|(kind, hours)| Action::AlertSilence { kind, hours }),
                (1..i64::MAX).prop_map(|id| Action::AlertAck { id }),
            ]
        }

        proptest! {
            #[test]
            fn every_button_fits_telegram_and_reads_back_as_itself(a in action()) {
                let data = encode(&a);
                prop_assert!(data.len() <= MAX_LEN);
                prop_assert_eq!(parse(&data), Some(a));
            }

            /// Whatever a client sends: never a panic, and what parses names a real button the bot itself would
            /// write (the short forms `dl:mp4` and `dl:srt:none` mean the same button as the long ones).
            #[test]
            fn data_that_parses_names_a_real_button(data in "[a-z0-9:_-]{0,70}|.{0,70}") {
                if let Some(a) = parse(&data) {
                    prop_assert!(data.len() <= MAX_LEN);
                    prop_assert_eq!(parse(&encode(&a)), Some(a));
                }
            }
        }
    }
}
