//! What is firing, when each type last sent a message, and what is silenced; and the pure step from one
//! evaluation's findings to the actions the manager carries out. Times are Unix seconds.

use std::collections::BTreeMap;

use super::kinds::AlertType;
use super::rules::{Finding, Rules};

#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    /// Its `alert_history` row, once stored.
    pub history_id: Option<i64>,
    pub since_s: i64,
    /// The latest figures (none right after a restart, until the next evaluation).
    pub finding: Option<Finding>,
    /// An admin acknowledged it: no reminders, the resolution is still announced.
    pub acknowledged: bool,
    /// A message about this firing reached the send queue.
    pub announced: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertState {
    pub open: BTreeMap<AlertType, Open>,
    /// When each type last sent a firing message: the throttle holds across a resolve and a new firing.
    pub last_sent: BTreeMap<AlertType, i64>,
    pub silenced_until: BTreeMap<AlertType, i64>,
}

/// Whether a firing message goes out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Send,
    Throttled,
    Silenced,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A new firing: one history row; a message when `Delivery::Send`.
    Opened { kind: AlertType, delivery: Delivery },
    /// Still firing after its throttle window: the message again.
    Reminder { kind: AlertType },
    /// The condition cleared: the row gets its resolved time; a notice when the firing had been announced.
    Resolved { kind: AlertType, open: Open, notify: bool },
}

impl AlertState {
    pub fn silenced(&self, kind: AlertType, now_s: i64) -> bool {
        self.silenced_until.get(&kind).is_some_and(|u| *u > now_s)
    }

    /// Whether the throttle window of `kind` has passed since its last message.
    fn may_send(&self, kind: AlertType, now_s: i64, rules: &Rules) -> bool {
        let window = rules.throttle(kind).as_secs() as i64;
        self.last_sent.get(&kind).is_none_or(|t| now_s >= t + window)
    }

    fn delivery(&self, kind: AlertType, now_s: i64, rules: &Rules) -> Delivery {
        if self.silenced(kind, now_s) {
            Delivery::Silenced
        } else if self.may_send(kind, now_s, rules) {
            Delivery::Send
        } else {
            Delivery::Throttled
        }
    }
}

/// One evaluation: opens, reminds and resolves; the state is updated as if every message was sent.
pub fn step(state: &mut AlertState, findings: &[Finding], now_s: i64, rules: &Rules) -> Vec<Action> {
    state.silenced_until.retain(|_, until| *until > now_s);
    let mut actions = Vec::new();
    for f in findings {
        let kind = f.kind;
        match (f.firing, state.open.contains_key(&kind)) {
            (true, false) => {
                let delivery = state.delivery(kind, now_s, rules);
                if delivery == Delivery::Send {
                    state.last_sent.insert(kind, now_s);
                }
                state.open.insert(
                    kind,
                    Open {
                        history_id: None,
                        since_s: now_s,
                        finding: Some(f.clone()),
                        acknowledged: false,
                        announced: delivery == Delivery::Send,
                    },
                );
                actions.push(Action::Opened { kind, delivery });
            }
            (true, true) => {
                let remind = state.delivery(kind, now_s, rules) == Delivery::Send;
                let open = state.open.get_mut(&kind).expect("checked");
                open.finding = Some(f.clone());
                if remind && !open.acknowledged {
                    open.announced = true;
                    state.last_sent.insert(kind, now_s);
                    actions.push(Action::Reminder { kind });
                }
            }
            (false, true) => {
                let open = state.open.remove(&kind).expect("checked");
                let notify = open.announced && !state.silenced(kind, now_s);
                actions.push(Action::Resolved { kind, open, notify });
            }
            (false, false) => {}
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::tests::rules;

    fn finding(kind: AlertType, firing: bool) -> Finding {
        Finding {
            kind,
            firing,
            current: String::new(),
            threshold: String::new(),
            affected: String::new(),
            details: String::new(),
        }
    }

    const E: AlertType = AlertType::HighErrorRate;

    #[test]
    fn a_firing_sends_once_per_throttle_window_then_resolves_with_a_notice() {
        let (mut s, r) = (AlertState::default(), rules());
        let fire = [finding(E, true)];
        assert_eq!(
            step(&mut s, &fire, 1000, &r),
            [Action::Opened {
                kind: E,
                delivery: Delivery::Send
            }]
        );
        assert_eq!(step(&mut s, &fire, 1060, &r), [], "inside the 30-minute window");
        assert_eq!(step(&mut s, &fire, 1000 + 1800, &r), [Action::Reminder { kind: E }]);
        let actions = step(&mut s, &[finding(E, false)], 4000, &r);
        assert!(matches!(&actions[..], [Action::Resolved { kind: E, notify: true, open }] if open.since_s == 1000));
        assert!(s.open.is_empty());
        assert_eq!(step(&mut s, &[finding(E, false)], 4060, &r), []);
    }

    #[test]
    fn a_new_firing_inside_the_window_is_recorded_but_not_sent_and_its_resolution_is_quiet() {
        let (mut s, r) = (AlertState::default(), rules());
        step(&mut s, &[finding(E, true)], 1000, &r);
        step(&mut s, &[finding(E, false)], 1100, &r);
        assert_eq!(
            step(&mut s, &[finding(E, true)], 1200, &r),
            [Action::Opened {
                kind: E,
                delivery: Delivery::Throttled
            }]
        );
        let actions = step(&mut s, &[finding(E, false)], 1300, &r);
        assert!(matches!(&actions[..], [Action::Resolved { notify: false, .. }]));
    }

    #[test]
    fn a_silence_holds_then_expires() {
        let (mut s, r) = (AlertState::default(), rules());
        let q = AlertType::QueueBackup;
        s.silenced_until.insert(q, 2000);
        assert_eq!(
            step(&mut s, &[finding(q, true)], 1000, &r),
            [Action::Opened {
                kind: q,
                delivery: Delivery::Silenced
            }]
        );
        assert_eq!(step(&mut s, &[finding(q, true)], 1500, &r), []);
        assert_eq!(
            step(&mut s, &[finding(q, true)], 2000, &r),
            [Action::Reminder { kind: q }],
            "the silence ended and nothing was sent before: at once"
        );
        assert!(s.silenced_until.is_empty());
    }

    #[test]
    fn an_acknowledged_alert_is_not_repeated_but_its_end_is_announced() {
        let (mut s, r) = (AlertState::default(), rules());
        step(&mut s, &[finding(E, true)], 0, &r);
        s.open.get_mut(&E).unwrap().acknowledged = true;
        assert_eq!(step(&mut s, &[finding(E, true)], 10_000, &r), []);
        let actions = step(&mut s, &[finding(E, false)], 10_060, &r);
        assert!(matches!(&actions[..], [Action::Resolved { notify: true, .. }]));
    }

    #[test]
    fn state_restored_after_a_restart_is_not_sent_early() {
        let (mut s, r) = (AlertState::default(), rules());
        // As the manager restores it: open since 1000, last message at 1000.
        s.open.insert(
            E,
            Open {
                history_id: Some(7),
                since_s: 1000,
                finding: None,
                acknowledged: false,
                announced: true,
            },
        );
        s.last_sent.insert(E, 1000);
        assert_eq!(step(&mut s, &[finding(E, true)], 1100, &r), []);
        let actions = step(&mut s, &[finding(E, false)], 1200, &r);
        assert!(matches!(&actions[..], [Action::Resolved { notify: true, open, .. }] if open.history_id == Some(7)));
    }
}
