//! Plans and what each allows: queue priority, a cooldown between requests, a daily quota.

use std::time::Duration;

use doradura_proto::types::{Priority, UnknownValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plan {
    Free,
    Premium,
    Vip,
}

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Free, Plan::Premium, Plan::Vip];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Premium => "premium",
            Plan::Vip => "vip",
        }
    }

    /// The name users read.
    pub fn title(self) -> &'static str {
        match self {
            Plan::Free => "Free",
            Plan::Premium => "Premium",
            Plan::Vip => "VIP",
        }
    }

    pub fn priority(self) -> Priority {
        match self {
            Plan::Free => Priority::Low,
            Plan::Premium => Priority::Medium,
            Plan::Vip => Priority::High,
        }
    }

    /// `FromStr` for callers to whom an unknown plan means "none".
    pub fn parse(s: &str) -> Option<Plan> {
        s.parse().ok()
    }
}

impl std::str::FromStr for Plan {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Plan, UnknownValue> {
        Plan::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "plan",
                value: s.chars().take(40).collect(),
                allowed: &["free", "premium", "vip"],
            })
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The limits of one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Least time between two download requests.
    pub cooldown: Duration,
    /// Download requests per UTC day; 0 means unlimited.
    pub daily_quota: u32,
    /// Requests in flight at once (their task queued or running); 0 means unlimited.
    pub max_active: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub free: PlanLimits,
    pub premium: PlanLimits,
    pub vip: PlanLimits,
}

impl Limits {
    pub fn of(&self, plan: Plan) -> PlanLimits {
        match plan {
            Plan::Free => self.free,
            Plan::Premium => self.premium,
            Plan::Vip => self.vip,
        }
    }
}

/// Why a request is refused now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wait this long.
    Cooldown { wait: Duration, cooldown: Duration },
    /// The day's quota is used; it resets in `resets_in`.
    Quota { quota: u32, resets_in: Duration },
    /// As many requests as the plan allows are already in flight.
    Busy { max_active: u32 },
}

/// What a user has used, as the database knows it (see `bot::store::usage` and `bot::store::in_flight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// When the user last made a request.
    pub last_request_ms: Option<i64>,
    /// Requests today that count toward the quota.
    pub today: u32,
    /// Requests in flight; `None` where the cap does not apply (a link sent, before any button is pressed).
    pub active: Option<u32>,
}

/// Checks a request against a plan's limits. The quota comes first (it is final for the day), then the cap on
/// requests in flight (it clears when one ends), then the cooldown.
pub fn check(limits: PlanLimits, now_ms: i64, usage: Usage) -> Result<(), Refusal> {
    let Usage {
        last_request_ms,
        today,
        active,
    } = usage;
    if limits.daily_quota > 0 && today >= limits.daily_quota {
        let day_ms = 86_400_000;
        let resets_in = Duration::from_millis((day_ms - now_ms.rem_euclid(day_ms)) as u64);
        return Err(Refusal::Quota {
            quota: limits.daily_quota,
            resets_in,
        });
    }
    if let Some(active) = active
        && limits.max_active > 0
        && active >= limits.max_active
    {
        return Err(Refusal::Busy {
            max_active: limits.max_active,
        });
    }
    if let Some(last) = last_request_ms {
        let since = Duration::from_millis(now_ms.saturating_sub(last).max(0) as u64);
        if since < limits.cooldown {
            return Err(Refusal::Cooldown {
                wait: limits.cooldown - since,
                cooldown: limits.cooldown,
            });
        }
    }
    Ok(())
}

/// Midnight UTC of the day holding `now_ms`.
pub fn day_start_ms(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREE: PlanLimits = PlanLimits {
        cooldown: Duration::from_secs(30),
        daily_quota: 3,
        max_active: 1,
    };

    fn used(last_request_ms: Option<i64>, today: u32) -> Usage {
        Usage {
            last_request_ms,
            today,
            active: None,
        }
    }

    #[test]
    fn cooldown_counts_from_the_last_request() {
        let now = 1_000_000_000_000;
        assert_eq!(check(FREE, now, used(None, 0)), Ok(()));
        assert_eq!(
            check(FREE, now, used(Some(now - 10_000), 1)),
            Err(Refusal::Cooldown {
                wait: Duration::from_secs(20),
                cooldown: Duration::from_secs(30)
            })
        );
        assert_eq!(check(FREE, now, used(Some(now - 30_000), 1)), Ok(()));
    }

    #[test]
    fn the_quota_resets_at_midnight_utc() {
        // 2026-11-28 22:00:00 UTC.
        let now = 1_795_903_200_000;
        assert_eq!(day_start_ms(now), 1_795_824_000_000);
        assert_eq!(
            check(FREE, now, used(None, 3)),
            Err(Refusal::Quota {
                quota: 3,
                resets_in: Duration::from_secs(2 * 3600)
            })
        );
        let unlimited = PlanLimits {
            cooldown: Duration::ZERO,
            daily_quota: 0,
            max_active: 0,
        };
        let busy = Usage {
            active: Some(10_000),
            ..used(Some(now), 10_000)
        };
        assert_eq!(check(unlimited, now, busy), Ok(()));
    }

    #[test]
    fn the_cap_on_requests_in_flight_applies_to_presses_only() {
        let now = 1_000_000_000_000;
        let pressed = |active| Usage {
            active: Some(active),
            ..used(Some(now - 60_000), 1)
        };
        assert_eq!(check(FREE, now, pressed(0)), Ok(()));
        assert_eq!(check(FREE, now, pressed(1)), Err(Refusal::Busy { max_active: 1 }));
        assert_eq!(check(FREE, now, pressed(2)), Err(Refusal::Busy { max_active: 1 }));
        // A link sent while busy still gets its keyboard: the cap is checked when a format is chosen.
        assert_eq!(check(FREE, now, used(Some(now - 60_000), 1)), Ok(()));
        let premium = PlanLimits { max_active: 3, ..FREE };
        assert_eq!(check(premium, now, pressed(2)), Ok(()));
        assert_eq!(check(premium, now, pressed(3)), Err(Refusal::Busy { max_active: 3 }));
        // The quota is final for the day and named first; the cap clears sooner than a cooldown and comes next.
        assert!(matches!(
            check(FREE, now, Usage { today: 3, ..pressed(1) }),
            Err(Refusal::Quota { .. })
        ));
        assert_eq!(
            check(
                FREE,
                now,
                Usage {
                    last_request_ms: Some(now),
                    ..pressed(1)
                }
            ),
            Err(Refusal::Busy { max_active: 1 })
        );
    }

    #[test]
    fn plans_map_to_queue_priorities() {
        assert_eq!(Plan::Free.priority(), Priority::Low);
        assert_eq!(Plan::Premium.priority(), Priority::Medium);
        assert_eq!(Plan::Vip.priority(), Priority::High);
        assert_eq!(Plan::parse("vip"), Some(Plan::Vip));
        assert_eq!(Plan::parse("gold"), None);
        assert_eq!(
            "gold".parse::<Plan>().unwrap_err().to_string(),
            "unknown plan \"gold\" (one of: free, premium, vip)"
        );
        for p in Plan::ALL {
            assert_eq!(p.to_string().parse::<Plan>(), Ok(p));
        }
    }
}
