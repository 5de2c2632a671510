//! Readings over time: what `rate`, `flapping` and `disk_full` rules judge.
//!
//! `rate` and `flapping` rules are judged on every pass from the device record, which holds
//! only the latest metrics and the running count of drops; the evaluator keeps a short series
//! of those per (rule, screen) in memory ([`Samples`]). Like pending breaches, the series
//! starts over when another replica takes the `alerts` lease, which delays such an alert by at
//! most half its window and never opens one early. `disk_full` reads the stored telemetry
//! history instead (it runs rarely, and a week's projection needs days of readings).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

/// Most readings kept per series: one per 1/`SLOTS` of the window.
pub const SLOTS: i64 = 60;

/// Readings of one value over a sliding window, oldest first, at most [`SLOTS`] + 1 of them.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    points: VecDeque<(DateTime<Utc>, f64)>,
}

impl Samples {
    /// Adds a reading taken at `at` and forgets those older than `window_s` before it. A
    /// reading closer than 1/[`SLOTS`] of the window to the newest kept one replaces it, so
    /// the series stays short however often it is fed; one not newer than it is ignored
    /// (the answer is then false).
    pub fn push(&mut self, at: DateTime<Utc>, value: f64, window_s: u32) -> bool {
        let window = i64::from(window_s);
        if let Some(&(last, _)) = self.points.back() {
            if at <= last {
                return false;
            }
            // The newest point moves up while it is closer than a slot to the one before it
            // (the series' start never moves).
            let n = self.points.len();
            if n > 1 && (last - self.points[n - 2].0).num_seconds() * SLOTS < window {
                self.points.pop_back();
            }
        }
        self.points.push_back((at, value));
        while self
            .points
            .front()
            .is_some_and(|(t, _)| (at - *t).num_seconds() > window)
        {
            self.points.pop_front();
        }
        true
    }

    /// How many seconds the readings span.
    pub fn span_s(&self) -> i64 {
        match (self.points.front(), self.points.back()) {
            (Some((first, _)), Some((last, _))) => (*last - *first).num_seconds(),
            _ => 0,
        }
    }

    /// Newest minus oldest reading.
    pub fn growth(&self) -> Option<f64> {
        Some(self.points.back()?.1 - self.points.front()?.1)
    }

    /// The least-squares slope in units per hour, once the readings span `min_span_s` and
    /// number at least three.
    pub fn slope_per_hour(&self, min_span_s: i64) -> Option<f64> {
        if self.points.len() < 3 || self.span_s() < min_span_s {
            return None;
        }
        slope_per_hour(self.points.iter().copied())
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The least-squares slope of `points` in units per hour; `None` for fewer than two distinct
/// times.
pub fn slope_per_hour(points: impl Iterator<Item = (DateTime<Utc>, f64)> + Clone) -> Option<f64> {
    let origin = points.clone().next()?.0;
    let hours = |t: DateTime<Utc>| (t - origin).num_milliseconds() as f64 / 3_600_000.0;
    let n = points.clone().count() as f64;
    let (sx, sy) = points
        .clone()
        .fold((0.0, 0.0), |(sx, sy), (t, v)| (sx + hours(t), sy + v));
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) = points.fold((0.0, 0.0), |(sxy, sxx), (t, v)| {
        let dx = hours(t) - mx;
        (sxy + dx * (v - my), sxx + dx * dx)
    });
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Longest projection reported, in days: "not within ten years" reads as this.
pub const NEVER_DAYS: f64 = 3_650.0;

/// Days until a value growing along `points` (hourly averages, oldest first) reaches `limit`,
/// from the newest point: the least-squares line carried forward. [`NEVER_DAYS`] when it is
/// not growing or would take longer; `None` with fewer than a day of readings.
pub fn days_until(points: &[(DateTime<Utc>, f64)], limit: f64) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if (last.0 - first.0).num_hours() < 24 {
        return None;
    }
    let per_hour = slope_per_hour(points.iter().copied())?;
    if per_hour <= 0.0 {
        return Some(NEVER_DAYS);
    }
    let room = (limit - last.1).max(0.0);
    Some((room / per_hour / 24.0).min(NEVER_DAYS))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + s)
    }

    #[test]
    fn a_steady_fall_reads_as_its_rate() {
        let mut s = Samples::default();
        // 100 MB lost every 15 s: 24,000 MB/h.
        for i in 0..200 {
            s.push(t(i * 15), 50_000.0 - 100.0 * i as f64, 3_600);
        }
        let slope = s.slope_per_hour(1_800).unwrap_or_else(|| panic!("spans the window"));
        assert!((slope + 24_000.0).abs() < 1e-6, "{slope}");
        assert!(s.len() <= SLOTS as usize + 2, "{}", s.len());
        assert!(s.span_s() <= 3_600);
        // Not judged before half the window is covered.
        let mut young = Samples::default();
        for i in 0..10 {
            young.push(t(i * 15), 1.0, 3_600);
        }
        assert_eq!(young.slope_per_hour(1_800), None);
    }

    #[test]
    fn drops_are_counted_over_the_window_only() {
        let mut s = Samples::default();
        for (at, drops) in [(0, 3.0), (600, 4.0), (1_200, 6.0), (3_000, 9.0)] {
            s.push(t(at), drops, 3_600);
        }
        assert_eq!(s.growth(), Some(6.0));
        // An hour after the second reading, the first two have left the window.
        s.push(t(4_300), 9.0, 3_600);
        assert_eq!(s.growth(), Some(3.0));
        // Old or repeated readings change nothing.
        assert!(!s.push(t(4_300), 100.0, 3_600));
        assert!(!s.push(t(10), 100.0, 3_600));
        assert_eq!(s.growth(), Some(3.0));
    }

    #[test]
    fn a_disk_filling_a_gigabyte_a_day_has_as_many_days_as_gigabytes_free() {
        let gb = 1e9;
        let points: Vec<_> = (0..72)
            .map(|h| (t(h * 3_600), 20.0 * gb + h as f64 * gb / 24.0))
            .collect();
        let days = days_until(&points, 30.0 * gb).unwrap_or_else(|| panic!("three days of readings"));
        // 20 + 71/24 GB used now, 30 GB in all.
        assert!((days - (10.0 - 71.0 / 24.0)).abs() < 1e-6, "{days}");
        let flat: Vec<_> = (0..48).map(|h| (t(h * 3_600), 20.0 * gb)).collect();
        assert_eq!(days_until(&flat, 30.0 * gb), Some(NEVER_DAYS));
        assert_eq!(days_until(&points[..10], 30.0 * gb), None);
    }

    proptest! {
        /// However readings arrive, the series stays short, in order and inside its window.
        #[test]
        fn the_series_stays_bounded(steps in prop::collection::vec((0i64..400, -1e6f64..1e6), 1..500), window in 600u32..86_400) {
            let mut s = Samples::default();
            let mut at = 0;
            for (dt, v) in steps {
                at += dt;
                s.push(t(at), v, window);
                prop_assert!(s.len() <= SLOTS as usize + 2);
                prop_assert!(s.span_s() <= i64::from(window));
                prop_assert!(s.points.iter().zip(s.points.iter().skip(1)).all(|(a, b)| a.0 < b.0));
            }
        }
    }
}
