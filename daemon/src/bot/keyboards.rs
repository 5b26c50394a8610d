//! Inline keyboards.

use doradura_proto::types::{Format, MetricsCategory};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::callback::{Action, AdminView, encode};
use super::texts;

fn button(action: Action) -> InlineKeyboardButton {
    let label = match &action {
        Action::Download { format, quality } | Action::Setting { format, quality } => texts::choice(*format, quality),
        Action::Cancel { .. } => "✖️ Cancel".to_string(),
        Action::Buy { plan } => format!("⭐ Buy {}", plan.title()),
        Action::CancelPlan => "Cancel my plan".to_string(),
        Action::Admin(AdminView::Refresh) => "🔄 Refresh".to_string(),
        Action::Admin(AdminView::Category(c)) => texts::category_button(*c),
        Action::AlertSilence { hours, .. } => format!("🔕 {hours}h"),
        Action::AlertAck { .. } => "✅ Acknowledge".to_string(),
    };
    InlineKeyboardButton::callback(label, encode(&action))
}

/// The choices for a link: the user's default first, then every format and quality.
pub fn formats(default: (Format, &'static str)) -> InlineKeyboardMarkup {
    let (format, quality) = default;
    let default = InlineKeyboardButton::callback(
        format!("⭐ {}", texts::choice(format, quality)),
        encode(&Action::Download { format, quality }),
    );
    let mp3 = ["320k", "192k", "128k"].map(|q| {
        button(Action::Download {
            format: Format::Mp3,
            quality: q,
        })
    });
    let mp4 = ["360p", "720p", "1080p"].map(|q| {
        button(Action::Download {
            format: Format::Mp4,
            quality: q,
        })
    });
    let srt = button(Action::Download {
        format: Format::Srt,
        quality: "none",
    });
    InlineKeyboardMarkup::new(vec![vec![default], mp3.to_vec(), mp4.to_vec(), vec![srt]])
}

pub fn cancel(request: i64) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![button(Action::Cancel { request })]])
}

/// Buy buttons, and a cancel button for a running paid plan.
pub fn plans(on_paid_plan: bool) -> InlineKeyboardMarkup {
    let mut rows = vec![vec![
        button(Action::Buy {
            plan: crate::plans::Plan::Premium,
        }),
        button(Action::Buy {
            plan: crate::plans::Plan::Vip,
        }),
    ]];
    if on_paid_plan {
        rows.push(vec![button(Action::CancelPlan)]);
    }
    InlineKeyboardMarkup::new(rows)
}

pub fn settings() -> InlineKeyboardMarkup {
    let rows = [Format::Mp3, Format::Mp4, Format::Srt].map(|format| {
        format
            .qualities()
            .iter()
            .map(|q| button(Action::Setting { format, quality: q }))
            .collect::<Vec<_>>()
    });
    InlineKeyboardMarkup::new(rows)
}

/// Under `/analytics`: refresh, then one button per `/metrics` category.
pub fn analytics() -> InlineKeyboardMarkup {
    let categories: Vec<_> = MetricsCategory::ALL
        .iter()
        .map(|c| button(Action::Admin(AdminView::Category(*c))))
        .collect();
    InlineKeyboardMarkup::new(vec![
        vec![button(Action::Admin(AdminView::Refresh))],
        categories[..2].to_vec(),
        categories[2..].to_vec(),
    ])
}

/// Under an alert: silence its type for 1, 4 or 24 hours, or acknowledge it.
pub fn alert(kind: crate::alerts::AlertType, history_id: i64) -> InlineKeyboardMarkup {
    let silences = super::callback::SILENCE_HOURS.map(|hours| button(Action::AlertSilence { kind, hours }));
    InlineKeyboardMarkup::new(vec![
        silences.to_vec(),
        vec![button(Action::AlertAck { id: history_id })],
    ])
}
