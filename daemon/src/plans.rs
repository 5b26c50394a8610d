//! Plans and what each allows: queue priority, a cooldown between requests, a daily quota.

use std::time::Duration;

use doradura_proto::types::Priority;

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

    pub fn parse(s: &str) -> Option<Plan> {
        Plan::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The limits of one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Least time between two download requests.
    pub cooldown: Duration,
    /// Download requests per UTC day; 0 means unlimited.
    pub daily_quota: u32,
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
}

/// Checks a request against a plan's limits, given the user's last request and today's count.
pub fn check(limits: PlanLimits, now_ms: i64, last_request_ms: Option<i64>, today: u32) -> Result<(), Refusal> {
    if limits.daily_quota > 0 && today >= limits.daily_quota {
        let day_ms = 86_400_000;
        let resets_in = Duration::from_millis((day_ms - now_ms.rem_euclid(day_ms)) as u64);
        return Err(Refusal::Quota {
            quota: limits.daily_quota,
            resets_in,
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
    };

    #[test]
    fn cooldown_counts_from_the_last_request() {
        let now = 1_000_000_000_000;
        assert_eq!(check(FREE, now, None, 0), Ok(()));
        assert_eq!(
            check(FREE, now, Some(now - 10_000), 1),
            Err(Refusal::Cooldown {
                wait: Duration::from_secs(20),
                cooldown: Duration::from_secs(30)
            })
        );
        assert_eq!(check(FREE, now, Some(now - 30_000), 1), Ok(()));
    }

    #[test]
    fn the_quota_resets_at_midnight_utc() {
        // 2026-11-28 22:00:00 UTC.
        let now = 1_795_903_200_000;
        assert_eq!(day_start_ms(now), 1_795_824_000_000);
        assert_eq!(
            check(FREE, now, None, 3),
            Err(Refusal::Quota {
                quota: 3,
                resets_in: Duration::from_secs(2 * 3600)
            })
        );
        let unlimited = PlanLimits {
            cooldown: Duration::ZERO,
            daily_quota: 0,
        };
        assert_eq!(check(unlimited, now, Some(now), 10_000), Ok(()));
    }

    #[test]
    fn plans_map_to_queue_priorities() {
        assert_eq!(Plan::Free.priority(), Priority::Low);
        assert_eq!(Plan::Premium.priority(), Priority::Medium);
        assert_eq!(Plan::Vip.priority(), Priority::High);
        assert_eq!(Plan::parse("vip"), Some(Plan::Vip));
        assert_eq!(Plan::parse("gold"), None);
    }
}
