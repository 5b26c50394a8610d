//! Errors by category over the last hour, in one-minute buckets. The database may be the thing failing, so the
//! window lives in memory; it starts empty with the process.

use std::sync::Mutex;
use std::time::Instant;

use doradura_proto::types::ErrorCategory;

const MINUTES: usize = 60;
const CATEGORIES: usize = ErrorCategory::ALL.len();

/// One bucket: the minute it counts (since the window was created) and a count per category.
#[derive(Clone, Copy, Default)]
struct Bucket {
    minute: u64,
    counts: [u64; CATEGORIES],
}

pub struct RecentErrors {
    started: Instant,
    buckets: Mutex<[Bucket; MINUTES]>,
}

impl Default for RecentErrors {
    fn default() -> Self {
        RecentErrors {
            started: Instant::now(),
            buckets: Mutex::new([Bucket::default(); MINUTES]),
        }
    }
}

impl RecentErrors {
    fn minute(&self) -> u64 {
        self.started.elapsed().as_secs() / 60
    }

    pub fn record(&self, category: usize) {
        self.record_at(category, self.minute());
    }

    /// Errors per category (in `ErrorCategory::ALL` order) over the last 60 minutes, this one included.
    pub fn last_hour(&self) -> [u64; CATEGORIES] {
        self.last_hour_at(self.minute())
    }

    fn record_at(&self, category: usize, minute: u64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = &mut buckets[minute as usize % MINUTES];
        if bucket.minute != minute {
            *bucket = Bucket {
                minute,
                counts: [0; CATEGORIES],
            };
        }
        bucket.counts[category] += 1;
    }

    fn last_hour_at(&self, minute: u64) -> [u64; CATEGORIES] {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut total = [0; CATEGORIES];
        for b in buckets.iter().filter(|b| b.minute + MINUTES as u64 > minute) {
            for (t, c) in total.iter_mut().zip(b.counts) {
                *t += c;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_counts_for_sixty_minutes_then_drops_out() {
        let r = RecentErrors::default();
        r.record_at(0, 0);
        r.record_at(0, 10);
        r.record_at(3, 59);
        assert_eq!(r.last_hour_at(59)[..4], [2, 0, 0, 1]);
        assert_eq!(r.last_hour_at(60)[..4], [1, 0, 0, 1], "minute 0 has left the window");
        // Minute 70 reuses minute 10's bucket: the old count is replaced, not added to.
        r.record_at(0, 70);
        assert_eq!(r.last_hour_at(70)[..4], [1, 0, 0, 1]);
        assert_eq!(r.last_hour_at(200), [0; CATEGORIES]);
    }
}
