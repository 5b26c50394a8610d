//! PNG charts for the admin commands, drawn with plotters and an embedded font (no system fonts needed).

use std::io::Cursor;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;
use rusqlite::{Connection, params};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (800, 400);
const HOUR_MS: i64 = 3_600_000;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; failing to parse it is a build defect.
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            tracing::error!("the embedded chart font does not parse; charts will have no text");
        }
    });
}

/// Downloads finished (done) and failed per hour over the 24 hours before `now_ms`, oldest first.
pub fn hourly(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<(u64, u64)>> {
    let start = now_ms - 24 * HOUR_MS;
    let mut out = vec![(0u64, 0u64); 24];
    let mut st = conn.prepare(
        "SELECT (finished_at_ms - ?1) / ?2 AS h, SUM(state = 'done'), SUM(state = 'failed')
           FROM download_tasks WHERE finished_at_ms >= ?1 AND finished_at_ms < ?3 GROUP BY h",
    )?;
    for row in st.query_map(params![start, HOUR_MS, now_ms], |r| {
        Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?))
    })? {
        let (h, done, failed) = row?;
        if let Some(slot) = usize::try_from(h).ok().and_then(|h| out.get_mut(h)) {
            *slot = (done, failed);
        }
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
#[error("drawing the chart failed: {0}")]
pub struct ChartError(String);

fn err(e: impl std::fmt::Display) -> ChartError {
    ChartError(e.to_string())
}

/// A line chart of named series over `labels.len()` points, as PNG bytes.
pub fn lines(title: &str, x_label: &str, series: &[(&str, RGBColor, Vec<u64>)]) -> Result<Vec<u8>, ChartError> {
    register_font();
    let points = series.first().map_or(0, |s| s.2.len());
    let top = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0..points.max(1) as u64 - 1, 0..top + top / 10 + 1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (name, color, values) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, v)| (i as u64, *v)),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    let image = image::RgbImage::from_raw(SIZE.0, SIZE.1, rgb).ok_or_else(|| err("buffer size"))?;
    let mut png = Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageOutputFormat::Png).map_err(err)?;
    Ok(png.into_inner())
}

/// Downloads and failures per hour over the last 24 hours.
pub fn downloads_24h(hours: &[(u64, u64)]) -> Result<Vec<u8>, ChartError> {
    lines(
        "Downloads per hour, last 24 h",
        "hour (0 = 24 h ago, 23 = the last hour)",
        &[
            ("succeeded", BLUE, hours.iter().map(|h| h.0).collect()),
            ("failed", RED, hours.iter().map(|h| h.1).collect()),
        ],
    )
}

/// Stars per day over the last 30 days.
pub fn revenue_30d(daily: &[u64]) -> Result<Vec<u8>, ChartError> {
    lines(
        "Revenue per day, last 30 days",
        "day (0 = 29 days ago, 29 = today, UTC)",
        &[("Stars", GREEN, daily.to_vec())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_bucketed_from_the_data() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        let now = 100 * HOUR_MS;
        for (state, finished) in [
            ("done", now - 1),
            ("done", now - 2),
            ("failed", now - 1),
            ("done", now - 23 * HOUR_MS - 1),
            ("done", now - 25 * HOUR_MS),
        ] {
            c.execute(
                "INSERT INTO download_tasks (url, format, quality, priority, priority_rank, state, created_at_ms,
                                             finished_at_ms) VALUES ('u', 'mp3', 'x', 'low', 2, ?1, 0, ?2)",
                params![state, finished],
            )
            .unwrap();
        }
        let h = hourly(&c, now).unwrap();
        assert_eq!(h.len(), 24);
        assert_eq!(h[23], (2, 1));
        assert_eq!(h[0], (1, 0));
        assert_eq!(
            h.iter().map(|x| x.0 + x.1).sum::<u64>(),
            4,
            "the task older than 24 h is out"
        );
    }

    #[test]
    fn the_chart_is_a_png_of_the_right_size() {
        let mut hours = vec![(0, 0); 24];
        hours[20] = (5, 1);
        let png = downloads_24h(&hours).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), SIZE);
        // Something other than the white background was drawn.
        assert!(img.to_rgb8().pixels().any(|p| p.0 != [255, 255, 255]));
    }
}
