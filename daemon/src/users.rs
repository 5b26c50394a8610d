//! Users: recorded on first contact, their plan and settings, and per-day activity for DAU/MAU.

use doradura_proto::types::Format;
use rusqlite::{Connection, OptionalExtension, params};

use crate::plans::Plan;

/// Who wrote to the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub user_id: i64,
    pub username: Option<String>,
    pub first_name: String,
    pub language_code: Option<String>,
}

/// Records the user, or refreshes what is known about them; `true` for a new user.
pub fn upsert(conn: &Connection, c: &Contact, now_s: i64) -> rusqlite::Result<bool> {
    let inserted = conn.execute(
        "INSERT INTO users (user_id, username, first_name, language_code, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (user_id) DO NOTHING",
        params![c.user_id, c.username, c.first_name, c.language_code, now_s],
    )?;
    if inserted == 0 {
        conn.execute(
            "UPDATE users SET username = ?2, first_name = ?3, language_code = ?4, last_seen_at = ?5 WHERE user_id = ?1",
            params![c.user_id, c.username, c.first_name, c.language_code, now_s],
        )?;
    }
    Ok(inserted == 1)
}

pub use doradura_proto::time::{utc_date, utc_time};

/// Adds to the user's counts for today.
pub fn record_activity(
    conn: &Connection,
    user_id: i64,
    commands: u32,
    downloads: u32,
    now_s: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO user_activity (user_id, activity_date, command_count, download_count, last_activity_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, activity_date) DO UPDATE SET
             command_count = command_count + excluded.command_count,
             download_count = download_count + excluded.download_count,
             last_activity_at = excluded.last_activity_at",
        params![user_id, utc_date(now_s), commands, downloads, now_s],
    )?;
    Ok(())
}

/// The user's plan now (an expired paid plan counts as free).
pub fn plan(conn: &Connection, user_id: i64, now_s: i64) -> rusqlite::Result<Plan> {
    let row: Option<(String, Option<i64>)> = conn
        .query_row(
            "SELECT plan, plan_expires_at FROM users WHERE user_id = ?1",
            [user_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match row {
        Some((plan, expires)) if expires.is_none_or(|e| e > now_s) => plan.parse().unwrap_or_else(|e| {
            tracing::warn!(user = user_id, error = %e, "a stored plan this version does not know counts as free");
            Plan::Free
        }),
        _ => Plan::Free,
    })
}

/// The user's default format and quality; the first mp3 quality for a user who set none. A stored pair this
/// version does not accept is logged and replaced by that default.
pub fn defaults(conn: &Connection, user_id: i64) -> rusqlite::Result<(Format, &'static str)> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT default_format, default_quality FROM users WHERE user_id = ?1",
            [user_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let fallback = (Format::Mp3, Format::Mp3.qualities()[0]);
    let Some((f, q)) = row else {
        return Ok(fallback);
    };
    let stored = f.parse::<Format>().and_then(|format| Ok((format, format.quality(&q)?)));
    Ok(match stored {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(user = user_id, error = %e, "stored default format or quality not accepted; using the default");
            fallback
        }
    })
}

pub fn set_defaults(conn: &Connection, user_id: i64, format: Format, quality: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE users SET default_format = ?2, default_quality = ?3 WHERE user_id = ?1",
        params![user_id, format.as_str(), quality],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        c
    }

    fn ann() -> Contact {
        Contact {
            user_id: 42,
            username: Some("ann".into()),
            first_name: "Ann".into(),
            language_code: None,
        }
    }

    #[test]
    fn a_user_is_new_once() {
        let c = db();
        assert!(upsert(&c, &ann(), 100).unwrap());
        let mut renamed = ann();
        renamed.first_name = "Anna".into();
        assert!(!upsert(&c, &renamed, 200).unwrap());
        let (name, created, seen): (String, i64, i64) = c
            .query_row("SELECT first_name, created_at, last_seen_at FROM users", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((name.as_str(), created, seen), ("Anna", 100, 200));
    }

    #[test]
    fn activity_adds_up_per_day() {
        let c = db();
        let day = 1_795_824_000; // 2026-11-28 00:00 UTC
        record_activity(&c, 42, 1, 0, day + 10).unwrap();
        record_activity(&c, 42, 2, 1, day + 20).unwrap();
        record_activity(&c, 42, 1, 0, day + 86_400).unwrap();
        let rows: Vec<(String, u32, u32)> = c
            .prepare("SELECT activity_date, command_count, download_count FROM user_activity ORDER BY activity_date")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, vec![("2026-11-28".into(), 3, 1), ("2026-11-29".into(), 1, 0)]);
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_795_910_399), "2026-11-28");
        assert_eq!(utc_date(1_795_910_400), "2026-11-29");
    }

    #[test]
    fn plans_expire_and_defaults_are_kept() {
        let c = db();
        upsert(&c, &ann(), 100).unwrap();
        assert_eq!(plan(&c, 42, 100).unwrap(), Plan::Free);
        c.execute(
            "UPDATE users SET plan = 'vip', plan_expires_at = 1000 WHERE user_id = 42",
            [],
        )
        .unwrap();
        assert_eq!(plan(&c, 42, 999).unwrap(), Plan::Vip);
        assert_eq!(plan(&c, 42, 1000).unwrap(), Plan::Free);
        assert_eq!(plan(&c, 7, 0).unwrap(), Plan::Free, "unknown users are free");
        assert_eq!(defaults(&c, 42).unwrap(), (Format::Mp3, "320k"));
        set_defaults(&c, 42, Format::Mp4, "480p").unwrap();
        assert_eq!(defaults(&c, 42).unwrap(), (Format::Mp4, "480p"));
    }
}
