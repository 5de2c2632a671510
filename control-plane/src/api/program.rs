//! Validation of the programme documents (aliyot, shiurim, timers) served by the generic
//! document handlers. What they come to on one day is `luach_content::day`.

use luach_content::limits;
use std::collections::HashSet;

use chrono::{Datelike, NaiveDate};
use luach_calendar::RuleSet;

use super::announcements::check_targets;
use super::documents::ApiDocument;
use crate::error::{ApiError, FieldError, check_text};
use crate::store::{AliyotInput, HonourKind, ShiurInput, TimerInput, TimerTarget};

/// Most honours recorded for one reading.
pub const MAX_HONOURS: usize = limits::HONOURS;
/// Longest lead time of a countdown, in minutes (a day).
pub const MAX_SHOW_BEFORE_MINUTES: u32 = 1_440;

fn done(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

fn check_date(errors: &mut Vec<FieldError>, path: &str, date: NaiveDate) {
    if !(1900..=2200).contains(&date.year()) {
        errors.push(FieldError::new(path, "must be between 1900 and 2200"));
    }
}

impl ApiDocument for AliyotInput {
    const NAME: &'static str = "aliyot";

    fn check(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        check_date(&mut errors, "date", self.date);
        if let Some(s) = &self.synagogue {
            check_text(&mut errors, "synagogue", s, true, limits::SYNAGOGUE_REF);
        }
        check_text(&mut errors, "note", &self.note, false, limits::NOTE);
        if self.honours.is_empty() || self.honours.len() > MAX_HONOURS {
            errors.push(FieldError::new("honours", format!("1–{MAX_HONOURS} honours")));
        }
        let mut seen = HashSet::new();
        for (i, h) in self.honours.iter().enumerate() {
            check_text(
                &mut errors,
                &format!("honours[{i}].name"),
                &h.name,
                true,
                limits::HONOUR_NAME,
            );
            if h.honour != HonourKind::Extra && !seen.insert(h.honour) {
                errors.push(FieldError::new(
                    format!("honours[{i}].honour"),
                    "given twice; use `extra` for additional aliyot",
                ));
            }
        }
        done(errors)
    }
}

impl ApiDocument for ShiurInput {
    const NAME: &'static str = "shiur";

    fn check(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        check_text(&mut errors, "teacher", &self.teacher, true, limits::TEACHER);
        check_text(&mut errors, "location", &self.location, false, limits::LOCATION);
        let rules = RuleSet {
            rules: vec![self.schedule.clone()],
            overrides: Vec::new(),
        };
        match rules.validate() {
            Ok(()) => {}
            Err(luach_calendar::Error::InvalidRule { path, message }) => {
                errors.push(FieldError::new(path.replacen("rules[0]", "schedule", 1), message))
            }
            Err(other) => errors.push(FieldError::new("schedule", other.to_string())),
        }
        done(errors)
    }
}

impl ApiDocument for TimerInput {
    const NAME: &'static str = "timer";

    fn check(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if self.label_he.trim().is_empty() && self.label_en.trim().is_empty() {
            errors.push(FieldError::new("label_he", "give the label in Hebrew, English or both"));
        }
        check_text(&mut errors, "label_he", &self.label_he, false, limits::TIMER_LABEL);
        check_text(&mut errors, "label_en", &self.label_en, false, limits::TIMER_LABEL);
        if let TimerTarget::Prayer(name) = &self.target {
            check_text(&mut errors, "target.prayer", name, true, limits::TIMER_PRAYER);
        }
        if !(1..=MAX_SHOW_BEFORE_MINUTES).contains(&self.show_before_minutes) {
            errors.push(FieldError::new(
                "show_before_minutes",
                format!("must be 1–{MAX_SHOW_BEFORE_MINUTES}"),
            ));
        }
        check_targets(&mut errors, &self.targets);
        done(errors)
    }
}
