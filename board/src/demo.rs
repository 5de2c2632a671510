//! A built-in demo synagogue: what `luach-agent render` draws without a bundle, and the fixed
//! content of the board's golden images. [`longest`] fills every field to the limit the
//! control plane's API accepts, to prove nothing overflows.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use luach_content::Bundle;
use luach_content::bundle::FORMAT;
use serde_json::{Value, json};

/// The limits the control plane's API enforces on what a screen shows.
pub use luach_content::limits;

fn schedule() -> Value {
    json!({
        "rules": [
            {"name": "שחרית", "time": {"fixed": "06:30"}, "days": ["weekday"]},
            {"name": "שחרית", "time": {"fixed": "06:15"}, "days": ["rosh_chodesh", "fast"]},
            {"name": "שחרית", "time": {"fixed": "08:30"}, "days": ["shabbat", "yom_tov"]},
            {"name": "מנחה", "time": {"zman": "sunset", "offset_minutes": -15},
             "round": {"mode": "down", "minutes": 5}, "days": ["every_day"]},
            {"name": "מנחה", "time": {"zman": "candle_lighting", "offset_minutes": 10}, "days": ["friday"]},
            {"name": "ערבית", "time": {"zman": "tzeit_8_5"}, "round": {"mode": "up", "minutes": 5},
             "days": ["sunday", "monday", "tuesday", "wednesday", "thursday"]}
        ]
    })
}

fn profile(name: &str, schedule: Value, zmanim: Value) -> Value {
    json!({
        "name": name,
        "address": "רחוב יפו 1, ירושלים",
        "latitude": 31.778, "longitude": 35.2354, "elevation_m": 754.0,
        "timezone": "Asia/Jerusalem",
        "israel": true,
        "nusach": "ashkenaz",
        "language": "he",
        "candle_lighting_minutes": 40,
        "schedule": schedule,
        "display": {
            "daily": ["hebrew_date", "parsha", "holidays", "daf_yomi", "omer", "announcements",
                      "yahrzeits", "aliyot", "shiurim", "timers"],
            "zmanim": zmanim,
            "page_seconds": 15,
            "hebrew_date_at_nightfall": true
        }
    })
}

fn default_zmanim() -> Value {
    json!([
        "alot_16_1",
        "misheyakir_11_5",
        "sunrise",
        "sof_zman_shma_mga",
        "sof_zman_shma_gra",
        "sof_zman_tefila_gra",
        "chatzot",
        "mincha_gedola",
        "plag_hamincha",
        "sunset",
        "tzeit_8_5"
    ])
}

/// Items are written `{"id": …, "#INPUT": {…}}` above for readability; a bundle carries
/// them flattened.
fn flatten(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            if let Some(Value::Object(input)) = map.remove("#INPUT") {
                map.extend(input);
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, flatten(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(flatten).collect()),
        other => other,
    }
}

fn bundle_from(value: Value) -> Bundle {
    // The demo is built from literals this crate's tests parse; a failure is a bug here.
    serde_json::from_value(flatten(value)).unwrap_or_else(|e| panic!("demo bundle does not parse: {e}"))
}

/// The demo synagogue with content around `date` (honours on that date, a yahrzeit in the
/// coming week, announcements, a shiur, a countdown to candle lighting).
pub fn bundle(date: NaiveDate) -> Bundle {
    let passed = date - Duration::days(365 * 30 - 3);
    bundle_from(json!({
        "format": FORMAT,
        "device_id": "demo",
        "tenant_id": "demo",
        "synagogue": {"id": "ohel-moshe", "#INPUT": profile("בית הכנסת אהל משה", schedule(), default_zmanim())},
        "announcements": [
            {"id": "a1", "text_he": "קידוש לכבוד בר המצווה של יונתן כהן אחרי התפילה. כל הקהל מוזמן!",
             "text_en": "Kiddush in honour of Yonatan Cohen's bar mitzvah after services. All welcome!", "priority": 80},
            {"id": "a2", "text_he": "שיעור הרב בהלכות שבת יתקיים השבוע ביום רביעי בשעה 20:30 באולם הקטן.",
             "text_en": "The rabbi's class on the laws of Shabbat meets this Wednesday at 20:30 in the small hall.", "priority": 40}
        ],
        "timers": [
            {"id": "t1", "#INPUT": {"label_he": "הדלקת נרות בעוד", "label_en": "Candle lighting in",
             "target": {"zman": "candle_lighting"}, "show_before_minutes": 120}}
        ],
        "memorials": [
            {"id": "m1", "#INPUT": {"name": "שרה בת אברהם", "family": "לוי",
             "passed": {"civil": {"date": passed.to_string()}}}}
        ],
        "shiurim": [
            {"id": "s1", "#INPUT": {"teacher": "הרב דוד", "location": "בית המדרש",
             "schedule": {"name": "דף יומי", "time": {"fixed": "05:45"}, "days": ["every_day"]}}}
        ],
        "aliyot": [
            {"id": "h1", "#INPUT": {"date": date.to_string(), "note": "שחרית", "honours": [
                {"honour": "kohen", "name": "ר׳ אהרן כהן"}, {"honour": "levi", "name": "ר׳ משה לוי"},
                {"honour": "shlishi", "name": "ר׳ יעקב ישראלי"}, {"honour": "maftir", "name": "ר׳ יונתן כהן"}
            ]}}
        ]
    }))
}

/// The demo synagogue around the civil date at `at` in Jerusalem.
pub fn bundle_at(at: DateTime<Utc>) -> Bundle {
    bundle((at + Duration::hours(2)).date_naive())
}

/// A screen nobody has assigned a synagogue to.
pub fn empty() -> Bundle {
    bundle_from(json!({
        "format": FORMAT, "device_id": "demo", "tenant_id": "demo", "synagogue": null,
        "announcements": [], "timers": [], "memorials": [], "shiurim": [], "aliyot": []
    }))
}

/// Whole words (Hebrew, English and numbers mixed) filling exactly `chars` characters.
pub fn words(chars: usize, seed: usize) -> String {
    const WORDS: [&str; 12] = [
        "ירושלים",
        "Jerusalem",
        "בית",
        "הכנסת",
        "congregation",
        "12:45",
        "המשפחה",
        "שלום",
        "Shabbat",
        "ותלמוד",
        "תורה",
        "2026",
    ];
    let mut out = String::new();
    let mut i = seed;
    loop {
        let word = WORDS[i % WORDS.len()];
        i += 1;
        let sep = usize::from(!out.is_empty());
        if out.chars().count() + sep + word.chars().count() > chars {
            break;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
    }
    // Pad with one-letter words so the length is exact.
    while out.chars().count() < chars {
        if chars - out.chars().count() >= 2 && !out.is_empty() {
            out.push(' ');
        }
        out.push('ו');
    }
    out
}

/// The longest content the API accepts, on `date`: every text at its limit, 20 zmanim, the
/// most honours, long prayer names.
pub fn longest(date: NaiveDate) -> Bundle {
    use limits::*;
    let zmanim: Vec<&str> = luach_calendar::Zman::ALL.iter().map(|z| z.key()).collect();
    let rules: Vec<Value> = (0..12)
        .map(|i| json!({"name": words(PRAYER_NAME, i), "time": {"fixed": format!("{:02}:{:02}", 6 + i, 5 * i)}, "days": ["every_day"]}))
        .collect();
    let announcements: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("a{i}"), "text_he": words(ANNOUNCEMENT, i), "text_en": words(ANNOUNCEMENT, i + 5), "priority": 50}))
        .collect();
    let memorials: Vec<Value> = (0..7_usize)
        .map(|i| {
            json!({"id": format!("m{i}"), "#INPUT": {"name": words(MEMORIAL_NAME, i), "family": words(MEMORIAL_FAMILY, i + 1),
                "passed": {"civil": {"date": (date + Duration::days(i64::try_from(i).unwrap_or(0))).with_year_back(40).to_string()}}}})
        })
        .collect();
    let honours: Vec<Value> = (0..HONOURS)
        .map(|i| json!({"honour": "extra", "name": words(HONOUR_NAME, i)}))
        .collect();
    bundle_from(json!({
        "format": FORMAT, "device_id": "demo", "tenant_id": "demo",
        "synagogue": {"id": "long", "#INPUT": profile(&words(SYNAGOGUE_NAME, 3), json!({"rules": rules}), json!(zmanim))},
        "announcements": announcements,
        "timers": [
            {"id": "t1", "#INPUT": {"label_he": words(TIMER_LABEL, 1), "label_en": words(TIMER_LABEL, 2),
             "target": {"at": (date.and_hms_opt(23, 0, 0).unwrap_or_default().and_utc()).to_rfc3339()}, "show_before_minutes": 1440}},
            {"id": "t2", "#INPUT": {"label_he": words(TIMER_LABEL, 3), "label_en": words(TIMER_LABEL, 4),
             "target": {"at": (date.and_hms_opt(22, 0, 0).unwrap_or_default().and_utc()).to_rfc3339()}, "show_before_minutes": 1440}}
        ],
        "memorials": memorials,
        "shiurim": [
            {"id": "s1", "#INPUT": {"teacher": words(TEACHER, 1), "location": words(LOCATION, 2),
             "schedule": {"name": words(PRAYER_NAME, 3), "time": {"fixed": "05:45"}, "days": ["every_day"]}}}
        ],
        "aliyot": [
            {"id": "h1", "#INPUT": {"date": date.to_string(), "note": words(NOTE, 2), "honours": honours}}
        ]
    }))
}

trait YearBack {
    fn with_year_back(self, years: i32) -> NaiveDate;
}

impl YearBack for NaiveDate {
    /// The same day `years` earlier (28 February for 29 February).
    fn with_year_back(self, years: i32) -> NaiveDate {
        use chrono::Datelike;
        self.with_year(self.year() - years)
            .or_else(|| (self - Duration::days(1)).with_year(self.year() - years))
            .unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_bundles_parse_and_words_are_exact() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
        assert!(bundle(date).synagogue.is_some());
        assert!(longest(date).synagogue.is_some());
        assert!(empty().synagogue.is_none());
        for n in [1, 7, 64, 100, 2000] {
            assert_eq!(words(n, 3).chars().count(), n);
        }
    }
}
