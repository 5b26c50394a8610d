//! Every reply the bot writes, in one place, so tests can assert on them.

use std::time::Duration;

use doradura_proto::types::{ErrorType, Format, MetricsCategory};

use crate::plans::{Plan, Refusal};

pub fn start(first_name: &str) -> String {
    format!(
        "👋 Hi, {first_name}! I turn links into files.\n\n\
         Send me a link to a video or a song page, pick MP3, MP4 or subtitles, and I send the file back here.\n\n\
         /settings sets your default format · /help lists every command"
    )
}

pub fn help(commands: &str) -> String {
    format!("Send me a link (http:// or https://) to get its audio, video or subtitles.\n\n{commands}")
}

pub const NOT_A_LINK: &str =
    "Send me a link (http:// or https://) to a video or a song page, and I'll send back the file.";
pub const CHOOSE_FORMAT: &str = "What should I make of this link?";
pub const ADMIN_ONLY: &str = "⛔ This command is for the bot's administrators.";
pub const BUTTON_INVALID: &str = "This button is not valid.";
pub const BUTTON_NOT_YOURS: &str = "This button belongs to someone else's message.";
pub const LINK_EXPIRED: &str = "This link has expired. Send it again.";
pub const ALREADY_REQUESTED: &str = "Already on its way.";
pub const REQUEST_GONE: &str = "This download no longer exists.";
pub const REQUEST_FINISHED: &str = "This download has already finished.";
pub const CANCELLING: &str = "Cancelling…";
pub const NOTHING_TO_CANCEL: &str = "You have no downloads running.";
pub const TRY_LATER: &str = "⚠️ Something went wrong on my side. Please try again in a minute.";

pub fn cancelled_count(n: usize) -> String {
    if n == 1 {
        "✖️ Cancelled your download.".into()
    } else {
        format!("✖️ Cancelled your {n} downloads.")
    }
}

pub fn choice(format: Format, quality: &str) -> String {
    match format {
        Format::Mp3 => format!("🎵 MP3 {quality}"),
        Format::Mp4 if quality == "best" => "🎬 MP4 best".to_string(),
        Format::Mp4 => format!("🎬 MP4 {quality}"),
        Format::Srt => "📝 Subtitles (SRT)".to_string(),
    }
}

pub fn settings(format: Format, quality: &str) -> String {
    format!(
        "⚙️ Your default: {}\nPick another one below; it is offered first for every link.",
        choice(format, quality)
    )
}

pub fn settings_saved(format: Format, quality: &str) -> String {
    format!("✅ Your default is now {}.", choice(format, quality))
}

pub fn queued(position: u32) -> String {
    if position == 0 {
        "⏳ Queued: you are next.".to_string()
    } else {
        format!("⏳ Queued: {position} ahead of you.")
    }
}

pub fn progress(percent: f32) -> String {
    format!("⬇️ Downloading… {percent:.0}%")
}

pub const SENDING: &str = "📤 Sending the file…";

fn human(d: Duration) -> String {
    let s = d.as_secs().max(1);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s / 60 % 60),
    }
}

pub fn refusal(r: Refusal, plan: Plan) -> String {
    let upgrade = match plan {
        Plan::Free => "\nPremium and VIP plans have shorter waits and larger quotas: /plan",
        Plan::Premium => "\nVIP has no wait and no quota: /plan",
        Plan::Vip => "",
    };
    match r {
        Refusal::Cooldown { wait, cooldown } => format!(
            "⏳ Please wait {} before your next download ({} plan: one every {}).{upgrade}",
            human(wait),
            plan.title(),
            human(cooldown)
        ),
        Refusal::Quota { quota, resets_in } => format!(
            "📅 You have used your {quota} downloads for today ({} plan). The quota resets at 00:00 UTC, in {}.{upgrade}",
            plan.title(),
            human(resets_in)
        ),
        Refusal::Busy { max_active } => {
            let more = match plan {
                Plan::Free => "\nPremium and VIP run several at once: /plan",
                Plan::Premium => "\nVIP runs more at once: /plan",
                Plan::Vip => "",
            };
            let (what, limit) = if max_active == 1 {
                ("a download on its way".to_string(), "one at a time".to_string())
            } else {
                (
                    format!("{max_active} downloads on their way"),
                    format!("{max_active} at a time"),
                )
            };
            format!(
                "🚧 You already have {what}, and the {} plan runs {limit}. Press again once one has arrived, or \
                 stop one with /cancel.{more}",
                plan.title()
            )
        }
    }
}

/// A failed download in plain words.
pub fn failure(error: ErrorType, max_file_mb: u64) -> String {
    match error {
        ErrorType::Unavailable => {
            "😕 This video is unavailable: it may have been removed or made private, or the link is wrong.".into()
        }
        ErrorType::GeoBlocked => "🌍 This video is not available in the region the bot runs in.".into(),
        ErrorType::AgeRestricted => "🔞 This video is age-restricted and cannot be downloaded.".into(),
        ErrorType::AuthRequired => {
            "🔒 This content needs a login (private or members-only), so I cannot get it.".into()
        }
        ErrorType::UnsupportedUrl => "🤷 I can't download from this link. Send a link to a video or audio page.".into(),
        ErrorType::Network => "📡 The site could not be reached. Please try again later.".into(),
        ErrorType::Timeout => "⏱ The download took too long and was stopped. Try a lower quality.".into(),
        ErrorType::TooLarge => {
            format!("📦 The file is larger than {max_file_mb} MB, the most I can send. Try a lower quality or MP3.")
        }
        ErrorType::Postprocessing => "🛠 The file could not be converted to that format. Try another one.".into(),
        ErrorType::DiskFull | ErrorType::YtdlpMissing => {
            "🛠 Downloads are unavailable right now. Please try again later.".into()
        }
        ErrorType::Cancelled => "✖️ Download cancelled.".into(),
        ErrorType::Unknown => "⚠️ This download failed. Please try again later.".into(),
    }
}

pub const INTERRUPTED: &str = "⚠️ This download was interrupted by a restart of the bot. Please send the link again.";
pub const ANALYTICS_CHART: &str = "Downloads per hour over the last 24 hours: succeeded and failed.";
pub const REVENUE_CHART: &str = "Stars per day over the last 30 days.";
pub const REFRESHED: &str = "Refreshed.";
pub const EXPORT_USAGE: &str = "Usage: /export [days], with days from 1 to 366 (7 when left out).";

pub fn alert_silenced(kind: &str, hours: u8) -> String {
    format!("🔕 {kind} silenced for {hours}h")
}

pub fn alert_acknowledged(kind: &str, id: i64) -> String {
    format!("✅ {kind} #{id} acknowledged")
}

/// The label of a `/metrics` category button.
pub fn category_button(category: MetricsCategory) -> String {
    let icon = match category {
        MetricsCategory::Performance => "⚙️",
        MetricsCategory::Business => "💰",
        MetricsCategory::Engagement => "👥",
        MetricsCategory::System => "🖥",
    };
    let mut name = category.as_str().to_string();
    name[..1].make_ascii_uppercase();
    format!("{icon} {name}")
}

/// The days of `/export [days]`: 7 when empty, 1 to 366, anything else `None`.
pub fn export_days(arg: &str) -> Option<u32> {
    match arg.trim() {
        "" => Some(7),
        a => a.parse().ok().filter(|d| (1..=366).contains(d)),
    }
}

pub fn export_caption(days: u32) -> String {
    format!("Daily figures of the last {days} days (UTC), one row per day.")
}

/// Telegram's limit on a message, in UTF-16 code units.
pub const MAX_MESSAGE: usize = 4096;

/// `text` cut into messages Telegram accepts: at line ends where possible, inside a line only when it alone is
/// too long, never inside a character.
pub fn pieces(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let units = |s: &str| s.encode_utf16().count();
    for line in text.split_inclusive('\n') {
        let last = out.last_mut().expect("never empty");
        if units(last) + units(line) <= MAX_MESSAGE {
            last.push_str(line);
            continue;
        }
        let mut current = String::new();
        for ch in line.chars() {
            if units(&current) + ch.len_utf16() > MAX_MESSAGE {
                out.push(std::mem::take(&mut current));
            }
            current.push(ch);
        }
        out.push(current);
    }
    out.retain(|p| !p.trim().is_empty());
    if out.is_empty() {
        out.push(text.to_string());
    }
    out
}
pub const SEND_FAILED: &str = "⚠️ The file was ready but could not be sent. Please request it again.";

/// `1:02:03` or `2:03`.
pub fn clock(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// `4.2 MB`.
pub fn size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{} KB", bytes.div_ceil(1000))
    }
}

/// The caption of a delivered file: title, duration, size.
pub fn caption(title: &str, duration_s: f64, bytes: u64) -> String {
    let title: String = title.chars().take(800).collect();
    let mut parts = Vec::new();
    if duration_s > 0.0 {
        parts.push(format!("⏱ {}", clock(duration_s.round() as u64)));
    }
    parts.push(format!("💾 {}", size(bytes)));
    if title.is_empty() {
        parts.join(" · ")
    } else {
        format!("{title}\n{}", parts.join(" · "))
    }
}

/// `2026-12-28 10:30 UTC`.
pub fn utc(ts: i64) -> String {
    let date = crate::users::utc_date(ts);
    format!(
        "{date} {:02}:{:02} UTC",
        ts.rem_euclid(86_400) / 3600,
        ts.rem_euclid(3600) / 60
    )
}

fn limits_line(l: crate::plans::PlanLimits) -> String {
    let wait = if l.cooldown.is_zero() {
        "no wait".to_string()
    } else {
        format!("one download every {}", human(l.cooldown))
    };
    let quota = if l.daily_quota == 0 {
        "no daily limit".to_string()
    } else {
        format!("{} a day", l.daily_quota)
    };
    match l.max_active {
        0 => format!("{wait}, {quota}"),
        1 => format!("{wait}, {quota}, one at a time"),
        n => format!("{wait}, {quota}, {n} at a time"),
    }
}

/// `/plan`: the user's plan and the offers, with the prices that will be invoiced.
pub fn plans(
    current: Plan,
    expires: Option<i64>,
    cancelled: bool,
    limits: &crate::plans::Limits,
    prices: &crate::payments::Prices,
    max_file_mb: u64,
) -> String {
    let mut out = match (current, expires) {
        (Plan::Free, _) | (_, None) => format!(
            "Your plan: {} ({}).\n",
            current.title(),
            limits_line(limits.of(current))
        ),
        (_, Some(e)) if cancelled => format!("Your plan: {}, cancelled: it ends on {}.\n", current.title(), utc(e)),
        (_, Some(e)) => format!("Your plan: {}, until {}.\n", current.title(), utc(e)),
    };
    for (plan, price, queue) in [
        (Plan::Premium, prices.premium, "faster queue"),
        (Plan::Vip, prices.vip, "first in the queue"),
    ] {
        out.push_str(&format!(
            "\n⭐ {} — {price} Stars for 30 days: {queue}, {}, files up to {max_file_mb} MB.",
            plan.title(),
            limits_line(limits.of(plan))
        ));
    }
    out
}

pub fn choice_plan(plan: Plan) -> String {
    format!("⭐ {}", plan.title())
}

pub fn invoice_title(plan: Plan) -> String {
    format!("doradura {} — 30 days", plan.title())
}

pub fn invoice_description(plan: Plan, limits: &crate::plans::Limits) -> String {
    format!("{} plan for 30 days: {}.", plan.title(), limits_line(limits.of(plan)))
}

pub fn thanks(plan: Plan, expires_at: i64) -> String {
    format!(
        "🎉 Thank you! Your {} plan is active until {}.",
        plan.title(),
        utc(expires_at)
    )
}

pub fn plan_cancelled(plan: Plan, expires_at: i64) -> String {
    format!(
        "Your {} plan is cancelled; it stays active until {}.",
        plan.title(),
        utc(expires_at)
    )
}

pub const NO_PLAN_TO_CANCEL: &str = "You have no paid plan to cancel.";

pub fn plan_ended(plan: Plan) -> String {
    format!(
        "Your {} plan has ended; you are on the Free plan now. /plan to renew.",
        plan.title()
    )
}

pub fn refunded(plan: Plan) -> String {
    format!("Your payment for {} was refunded and the plan was ended.", plan.title())
}

pub fn refund_done(charge: &str, user: i64, plan: Plan) -> String {
    format!("✅ Refunded {charge}: user {user} lost {}.", plan.title())
}

pub fn refund_unknown(charge: &str) -> String {
    format!("No refundable payment with charge id {charge:?}.")
}

pub fn refund_refused(charge: &str) -> String {
    format!("⚠️ Telegram refused the refund of {charge}; it is kept for you to resolve.")
}

pub const REFUND_USAGE: &str = "Usage: /refund CHARGE_ID";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_at_line_ends_and_every_piece_fits() {
        let line = "é".repeat(99) + "\n";
        let text = line.repeat(100);
        let pieces = pieces(&text);
        assert_eq!(pieces.concat(), text, "nothing lost");
        assert!(pieces.iter().all(|p| p.encode_utf16().count() <= MAX_MESSAGE));
        assert!(pieces.iter().all(|p| p.ends_with('\n')), "cut at line ends");
        // One line longer than a message, of 2-unit characters: cut between characters.
        let wide = "😀".repeat(3000);
        let pieces = super::pieces(&wide);
        assert_eq!(pieces.concat(), wide);
        assert_eq!(
            pieces.iter().map(|p| p.encode_utf16().count()).collect::<Vec<_>>(),
            [4096, 1904]
        );
        assert_eq!(super::pieces("short"), ["short"]);
    }

    #[test]
    fn export_days_accepts_a_bounded_number_only() {
        assert_eq!(export_days(""), Some(7));
        assert_eq!(export_days(" 30 "), Some(30));
        for junk in ["0", "367", "-1", "7d", "1e3", "seven"] {
            assert_eq!(export_days(junk), None, "{junk}");
        }
    }

    #[test]
    fn every_error_type_has_plain_words() {
        for e in ErrorType::ALL {
            let text = failure(*e, 50);
            assert!(!text.contains('_') && text.len() > 15, "{e}: {text}");
        }
        assert!(failure(ErrorType::TooLarge, 50).contains("50 MB"));
    }

    #[test]
    fn captions_and_refusals_read_naturally() {
        assert_eq!(caption("Song", 185.4, 4_200_000), "Song\n⏱ 3:05 · 💾 4.2 MB");
        assert_eq!(caption("", 0.0, 900), "💾 1 KB");
        assert_eq!(clock(3723), "1:02:03");
        let r = Refusal::Cooldown {
            wait: Duration::from_secs(25),
            cooldown: Duration::from_secs(30),
        };
        assert_eq!(
            refusal(r, Plan::Free),
            "⏳ Please wait 25 s before your next download (Free plan: one every 30 s).\n\
             Premium and VIP plans have shorter waits and larger quotas: /plan"
        );
        let q = Refusal::Quota {
            quota: 10,
            resets_in: Duration::from_secs(5 * 3600 + 12 * 60),
        };
        assert!(refusal(q, Plan::Premium).contains("your 10 downloads for today (Premium plan)"));
        assert!(refusal(q, Plan::Premium).contains("in 5 h 12 min"));
        assert_eq!(
            refusal(Refusal::Busy { max_active: 1 }, Plan::Free),
            "🚧 You already have a download on its way, and the Free plan runs one at a time. Press again once one \
             has arrived, or stop one with /cancel.\nPremium and VIP run several at once: /plan"
        );
        assert!(
            refusal(Refusal::Busy { max_active: 3 }, Plan::Premium)
                .starts_with("🚧 You already have 3 downloads on their way, and the Premium plan runs 3 at a time.")
        );
    }

    #[test]
    fn refusals_fit_a_callback_answer() {
        // Telegram cuts an answerCallbackQuery text at 200 characters.
        let long = Duration::from_secs(23 * 3600 + 59 * 60);
        for plan in Plan::ALL {
            for r in [
                Refusal::Busy { max_active: 1000 },
                Refusal::Quota {
                    quota: 1_000_000,
                    resets_in: long,
                },
                Refusal::Cooldown {
                    wait: long,
                    cooldown: long,
                },
            ] {
                let text = refusal(r, plan);
                assert!(text.chars().count() <= 200, "{}: {text}", text.chars().count());
            }
        }
    }
}
