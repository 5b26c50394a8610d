//! The bot's commands; the doc comments are the help text.

use doradura_proto::types::CommandName;
use teloxide::utils::command::BotCommands;

/// Commands for everyone.
#[derive(BotCommands, Clone, Debug, PartialEq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    /// greeting and how to use the bot
    Start(String),
    /// every command, one line each
    Help,
    /// your default format and quality
    Settings,
    /// cancel your running downloads
    Cancel,
    /// your plan, Premium and VIP, and buying them with Stars
    Plan,
}

impl Command {
    /// The `command` label of `doradura_command_usage_total`.
    pub fn name(&self) -> CommandName {
        match self {
            Command::Start(_) => CommandName::Start,
            Command::Help => CommandName::Help,
            Command::Settings => CommandName::Settings,
            Command::Cancel => CommandName::Cancel,
            Command::Plan => CommandName::Plan,
        }
    }
}

/// Commands for the user ids in ADMIN_IDS.
#[derive(BotCommands, Clone, Debug, PartialEq)]
#[command(rename_rule = "lowercase")]
pub enum AdminCommand {
    /// (admin) the last 24 hours: downloads, success, revenue, users, queue
    Analytics,
    /// (admin) uptime, workers, queue, yt-dlp and database
    Health,
    /// (admin) details by category: performance, business, engagement or system
    Metrics(String),
    /// (admin) Stars all-time and in 30 days, by plan, the funnel and payment statistics
    Revenue,
    /// (admin) refund a Stars payment by its charge id and revoke its plan
    Refund(String),
    /// (admin) the daily figures of the last N days (7 by default) as a CSV file
    Export(String),
    /// (admin) alerts firing now, silences, and the last 20 from history
    Alerts,
}

impl AdminCommand {
    /// The `command` label of `doradura_command_usage_total`.
    pub fn name(&self) -> CommandName {
        match self {
            AdminCommand::Analytics => CommandName::Analytics,
            AdminCommand::Health => CommandName::Health,
            AdminCommand::Metrics(_) => CommandName::Metrics,
            AdminCommand::Revenue => CommandName::Revenue,
            AdminCommand::Refund(_) => CommandName::Refund,
            AdminCommand::Export(_) => CommandName::Export,
            AdminCommand::Alerts => CommandName::Alerts,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any message text: the command parsers never panic; a junk category or day count is answered with
        /// a bounded reply that echoes nothing unescaped (no control characters reach the chat).
        #[test]
        fn junk_commands_get_bounded_escaped_answers(text in "/(metrics|export|start|plan)( .{0,120})?|.{0,120}") {
            let _ = Command::parse(&text, "doradura_bot");
            match AdminCommand::parse(&text, "doradura_bot") {
                Ok(AdminCommand::Metrics(arg)) => {
                    let reply = crate::admin_metrics::menu(Some(arg.trim()));
                    prop_assert!(reply.chars().count() < 400, "{}", reply);
                    prop_assert!(!reply.chars().any(|c| c.is_control() && c != '\n'), "{:?}", reply);
                }
                Ok(AdminCommand::Export(arg)) => {
                    prop_assert!(super::super::texts::export_days(&arg).is_none_or(|d| (1..=366).contains(&d)));
                }
                _ => {}
            }
        }
    }
}
