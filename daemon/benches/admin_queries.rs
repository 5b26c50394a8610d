//! The admin commands' figures over a large history: 1,000,000 task rows spread over 30 days, 1,000,000
//! `user_activity` rows (33,334 users × 30 days), 5,000 payments, 10,000 checkouts, 20,000 plan views, in a real
//! SQLite file with the project's migrations. Each row below is what a handler does before it sends: the queries
//! and the text (and, separately, the PNG).
//!
//! Run: `cargo bench -p doradurad --bench admin_queries`

use std::time::Instant;

use doradurad::{admin_metrics, analytics, charts, revenue, rollup};
use rusqlite::{Connection, params};

const TASKS: i64 = 1_000_000;
const USERS: i64 = 33_334;
const DAYS: i64 = 30;
const RUNS: usize = 21;
const DAY_MS: i64 = 86_400_000;

/// A deterministic spread of values (no RNG dependency): the `i`-th of a 64-bit mix.
fn mix(i: i64) -> u64 {
    let mut x = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn fill(conn: &mut Connection, now_ms: i64) {
    let tx = conn.transaction().unwrap();
    {
        let mut user = tx
            .prepare("INSERT INTO users (user_id, first_name, created_at, last_seen_at) VALUES (?1, 'u', ?2, ?2)")
            .unwrap();
        let mut activity = tx
            .prepare(
                "INSERT INTO user_activity (user_id, activity_date, command_count, download_count, last_activity_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        for u in 1..=USERS {
            let created = now_ms / 1000 - (mix(u) % (DAYS as u64 * 86_400)) as i64;
            user.execute(params![u, created]).unwrap();
            for d in 0..DAYS {
                let at = now_ms / 1000 - d * 86_400;
                let date = doradurad::users::utc_date(at);
                activity
                    .execute(params![
                        u,
                        date,
                        (mix(u * 31 + d) % 5) as i64,
                        (mix(u * 7 + d) % 3) as i64,
                        at
                    ])
                    .unwrap();
            }
        }
        let mut task = tx
            .prepare(
                "INSERT INTO download_tasks (user_id, url, format, quality, priority, priority_rank, state, attempts,
                                             error_type, bytes, created_at_ms, finished_at_ms, total_ms)
                 VALUES (?1, 'https://media.example/v', ?2, ?3, 'low', 2, ?4, 1, ?5, ?6, ?7, ?8, ?9)",
            )
            .unwrap();
        for i in 0..TASKS {
            let r = mix(i);
            let (format, quality) = [("mp3", "320k"), ("mp4", "720p"), ("srt", "none")][(r % 3) as usize];
            let failed = r.is_multiple_of(10);
            let finished = now_ms - (r >> 8) as i64 % (DAYS * DAY_MS);
            let total = 500 + (r >> 20) as i64 % 20_000;
            task.execute(params![
                1 + (r >> 4) as i64 % USERS,
                format,
                quality,
                if failed { "failed" } else { "done" },
                failed.then_some("unavailable"),
                (!failed).then_some(1_000_000 + (r >> 12) as i64 % 5_000_000),
                finished - total,
                finished,
                total
            ])
            .unwrap();
        }
        let mut pay = tx
            .prepare(
                "INSERT INTO payments (telegram_payment_charge_id, user_id, plan, amount_stars, paid_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        for i in 0..5_000 {
            let vip = mix(i).is_multiple_of(3);
            pay.execute(params![
                format!("charge-{i}"),
                1 + i % USERS,
                if vip { "vip" } else { "premium" },
                if vip { 250 } else { 100 },
                now_ms / 1000 - (mix(i) >> 10) as i64 % (2 * DAYS * 86_400)
            ])
            .unwrap();
        }
        let mut checkout = tx
            .prepare(
                "INSERT INTO checkouts (user_id, plan, amount_stars, created_at_ms) VALUES (?1, 'premium', 100, ?2)",
            )
            .unwrap();
        let mut view = tx
            .prepare("INSERT INTO funnel_events (kind, user_id, at_ms) VALUES ('plan_view', ?1, ?2)")
            .unwrap();
        for i in 0..20_000 {
            let at = now_ms - (mix(i + 7) >> 10) as i64 % (DAYS * DAY_MS);
            view.execute(params![1 + i % USERS, at]).unwrap();
            if i % 2 == 0 {
                checkout.execute(params![1 + i % USERS, at]).unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

/// (p50, p95) in milliseconds of `RUNS` runs.
fn time(mut f: impl FnMut()) -> (f64, f64) {
    let mut ms: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[RUNS / 2], ms[RUNS * 95 / 100])
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doradura.db");
    let mut conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    doradurad::db::migrate(&mut conn).unwrap();
    let now_ms = doradurad::now_ms();
    let t = Instant::now();
    fill(&mut conn, now_ms);
    conn.execute_batch("ANALYZE").unwrap();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "filled {TASKS} tasks, {} activity rows in {:.1} s ({:.0} MB)",
        USERS * DAYS,
        t.elapsed().as_secs_f64(),
        size as f64 / 1e6
    );

    let t = Instant::now();
    let rows = rollup::roll_up(&mut conn, None).unwrap();
    println!(
        "first roll-up over the whole history: {:.0} ms ({rows} rows)",
        t.elapsed().as_secs_f64() * 1000.0
    );

    let mut rows: Vec<(&str, (f64, f64))> = Vec::new();
    rows.push((
        "/analytics figures (dashboard, hourly series, text)",
        time(|| {
            let d = analytics::dashboard(&conn, now_ms).unwrap();
            charts::hourly(&conn, now_ms).unwrap();
            std::hint::black_box(analytics::render(&d, "✅ 2026.10.26"));
        }),
    ));
    let hours = charts::hourly(&conn, now_ms).unwrap();
    rows.push((
        "/analytics chart (PNG)",
        time(|| {
            std::hint::black_box(charts::downloads_24h(&hours).unwrap());
        }),
    ));
    rows.push((
        "/revenue figures (text)",
        time(|| {
            std::hint::black_box(revenue::render(&revenue::compute(&conn, now_ms).unwrap()));
        }),
    ));
    let daily = revenue::compute(&conn, now_ms).unwrap().daily;
    rows.push((
        "/revenue chart (PNG)",
        time(|| {
            std::hint::black_box(charts::revenue_30d(&daily).unwrap());
        }),
    ));
    rows.push((
        "/metrics performance",
        time(|| {
            std::hint::black_box(admin_metrics::performance(&conn, now_ms).unwrap());
        }),
    ));
    rows.push((
        "/metrics engagement",
        time(|| {
            std::hint::black_box(admin_metrics::engagement(&conn, now_ms).unwrap());
        }),
    ));
    rows.push((
        "roll-up every interval (since the last run)",
        time(|| {
            rollup::roll_up(&mut conn, Some(now_ms / 1000 - 600)).unwrap();
        }),
    ));
    rows.push((
        "/export 30 (roll-up of the last day, 30 rows of CSV)",
        time(|| {
            rollup::roll_up(&mut conn, Some(now_ms / 1000 - rollup::DAY_S)).unwrap();
            std::hint::black_box(rollup::csv(&rollup::daily(&conn, now_ms / 1000, 30).unwrap()));
        }),
    ));
    println!("\n| step | p50 (ms) | p95 (ms) |\n|---|---|---|");
    for (name, (p50, p95)) in rows {
        println!("| {name} | {p50:.1} | {p95:.1} |");
    }
}
