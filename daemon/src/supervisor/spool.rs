//! Room in the spool. A task is leased only while the filesystem of `DOWNLOAD_DIR` has `MAX_FILE_SIZE_MB` free for
//! every running task and the new one, plus the `DOWNLOAD_MIN_FREE_MB` reserve (the database may share that disk).
//! Otherwise tasks wait in the queue: nothing fails, and `/health`, `doradurctl status`, the spool gauges and the
//! `DiskSpaceLow` alert say why.
//!
//! The decisions are pure functions of a measurement; [`free_bytes`] is the only call that touches the system.

use std::path::Path;

use crate::config::Config;

const MIB: u64 = 1024 * 1024;

/// What starting a task costs in spool space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolPolicy {
    /// `MAX_FILE_SIZE_MB`, in bytes: what one running task may write.
    pub per_task_bytes: u64,
    /// `DOWNLOAD_MIN_FREE_MB`, in bytes: kept free whatever runs.
    pub reserve_bytes: u64,
}

impl SpoolPolicy {
    pub fn from_config(c: &Config) -> SpoolPolicy {
        SpoolPolicy {
            per_task_bytes: c.max_file_size_mb.saturating_mul(MIB),
            reserve_bytes: c.download_min_free_mb.saturating_mul(MIB),
        }
    }

    /// Free bytes needed to start one more task while `running` tasks run.
    pub fn required(&self, running: u64) -> u64 {
        self.per_task_bytes
            .saturating_mul(running.saturating_add(1))
            .saturating_add(self.reserve_bytes)
    }

    /// How many more tasks may start beside `running` ones with `free` bytes free.
    pub fn room_for(&self, free: u64, running: u64) -> u64 {
        let usable = free.saturating_sub(self.reserve_bytes);
        let fits = usable.checked_div(self.per_task_bytes).unwrap_or(u64::MAX);
        fits.saturating_sub(running)
    }

    /// The spool's state after a measurement (`Err`: the filesystem could not be asked).
    pub fn assess(&self, free: Result<u64, String>, running: u64) -> SpoolStatus {
        let required_bytes = self.required(running);
        match free {
            Ok(free) => SpoolStatus {
                free_bytes: Some(free),
                required_bytes,
                error: None,
            },
            Err(e) => SpoolStatus {
                free_bytes: None,
                required_bytes,
                error: Some(e),
            },
        }
    }
}

/// The spool as last measured by the supervisor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStatus {
    /// Bytes free for the service; `None` when the filesystem could not be asked.
    pub free_bytes: Option<u64>,
    /// Bytes needed to start one more task now.
    pub required_bytes: u64,
    /// Why the filesystem could not be asked.
    pub error: Option<String>,
}

impl SpoolStatus {
    /// Whether one more task may start. A spool that cannot be measured has no room: a task would fail in it.
    pub fn has_room(&self) -> bool {
        self.free_bytes.is_some_and(|f| f >= self.required_bytes)
    }

    /// One line for logs, status output and alerts.
    pub fn describe(&self) -> String {
        match (&self.error, self.free_bytes) {
            (Some(e), _) => format!("cannot be measured: {e}"),
            (None, Some(free)) => format!("{} free, {} needed", mib(free), mib(self.required_bytes)),
            (None, None) => "not measured yet".to_string(),
        }
    }
}

/// Bytes as whole MiB, for people.
pub fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / MIB)
}

/// Bytes available to an unprivileged writer on the filesystem holding `path` (`statvfs`: `f_bavail × f_frsize`).
pub fn free_bytes(path: &Path) -> Result<u64, String> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|e| format!("statvfs {}: {e}", path.display()))?;
    Ok((s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: SpoolPolicy = SpoolPolicy {
        per_task_bytes: 50 * MIB,
        reserve_bytes: 512 * MIB,
    };

    #[test]
    fn one_more_task_needs_its_share_beside_the_running_ones_plus_the_reserve() {
        assert_eq!(POLICY.required(0), 562 * MIB);
        assert_eq!(POLICY.required(2), 662 * MIB);
        let s = POLICY.assess(Ok(662 * MIB), 2);
        assert!(s.has_room(), "exactly enough is enough");
        let s = POLICY.assess(Ok(662 * MIB - 1), 2);
        assert!(!s.has_room());
        assert_eq!(s.describe(), "661 MiB free, 662 MiB needed");
        assert!(POLICY.assess(Ok(662 * MIB - 1), 1).has_room(), "one task fewer fits");
    }

    #[test]
    fn room_for_counts_the_tasks_that_may_start_now() {
        assert_eq!(POLICY.room_for(0, 0), 0);
        assert_eq!(POLICY.room_for(511 * MIB, 0), 0, "inside the reserve");
        assert_eq!(POLICY.room_for(562 * MIB - 1, 0), 0);
        assert_eq!(POLICY.room_for(562 * MIB, 0), 1);
        assert_eq!(POLICY.room_for(712 * MIB, 0), 4);
        assert_eq!(POLICY.room_for(712 * MIB, 3), 1);
        assert_eq!(POLICY.room_for(712 * MIB, 4), 0);
        assert_eq!(
            POLICY.room_for(712 * MIB, 9),
            0,
            "more running than fit: none, no underflow"
        );
        // room_for and required agree everywhere.
        for free in [0, 100 * MIB, 562 * MIB, 700 * MIB, 5000 * MIB] {
            for running in 0..5 {
                assert_eq!(
                    POLICY.room_for(free, running) > 0,
                    POLICY.assess(Ok(free), running).has_room(),
                    "{free} {running}"
                );
            }
        }
    }

    #[test]
    fn no_reserve_and_huge_values_do_not_overflow() {
        let p = SpoolPolicy {
            per_task_bytes: 2000 * MIB,
            reserve_bytes: 0,
        };
        assert_eq!(p.required(0), 2000 * MIB);
        assert_eq!(p.required(u64::MAX), u64::MAX);
        assert_eq!(p.room_for(u64::MAX, 0), u64::MAX / (2000 * MIB));
        let zero = SpoolPolicy {
            per_task_bytes: 0,
            reserve_bytes: 0,
        };
        assert!(zero.room_for(0, 7) > 0);
    }

    #[test]
    fn a_spool_that_cannot_be_measured_takes_no_task_and_says_why() {
        let s = POLICY.assess(Err("statvfs /x: ENOENT".into()), 0);
        assert!(!s.has_room());
        assert_eq!(s.describe(), "cannot be measured: statvfs /x: ENOENT");
        assert!(!SpoolStatus::default().has_room());
    }

    #[test]
    fn free_bytes_reads_a_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_ok());
        let err = free_bytes(&dir.path().join("missing")).unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}
