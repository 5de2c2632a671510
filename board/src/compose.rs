//! What the board says at one instant: every string it draws, in the screen's language,
//! computed from the bundle with `luach-content` (the same day computation the control
//! plane's previews use). Layout decides where the strings go; nothing here knows pixels.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use luach_calendar::{DayBoundary, Zman, hebrew_date_at};
use luach_content::bundle::ScreenDay;
use luach_content::{BoardLanguage, Bundle, Error as ContentError};

use crate::names::{self, Label, Lang};

/// How long a screen may go without reaching the server before the board says so.
pub const OFFLINE_AFTER: Duration = Duration::minutes(10);

/// What the screen knows about its connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// When the screen last reached the server, if it has lost it (`None`: connected).
    pub offline_since: Option<DateTime<Utc>>,
}

/// A label and a value on one row (a zman, a prayer time, an honour, a yahrzeit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub label: String,
    pub value: String,
}

impl Row {
    fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// Rows under a title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub title: String,
    pub rows: Vec<Row>,
}

/// One card of the rotating panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Card {
    /// An announcement (long ones are shown a page of lines at a time).
    Text { title: String, text: String },
    /// A list: yahrzeits, honours, shiurim.
    Rows(Group),
}

/// A countdown on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Countdown {
    pub label: String,
    /// Remaining time, e.g. `12:05`.
    pub remaining: String,
}

/// Everything the board draws at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    /// The board's reading direction (Hebrew boards run right to left).
    pub rtl: bool,
    pub name: String,
    /// Local time, `HH:MM:SS`.
    pub clock: String,
    pub gregorian: String,
    pub hebrew: String,
    /// Holidays of the (Hebrew) day, or the week's parsha.
    pub occasion: String,
    pub zmanim: Group,
    /// Today's prayer times, then the coming Shabbat's.
    pub prayers: Vec<Group>,
    pub countdowns: Vec<Countdown>,
    pub cards: Vec<Card>,
    /// Daf yomi and omer, as chosen (a line per language).
    pub footer: String,
    /// The offline note, when the screen has lost the server for longer than
    /// [`OFFLINE_AFTER`].
    pub offline: Option<String>,
    /// Rotation counter: whole `page_seconds` periods since the epoch.
    pub page: u64,
}

/// The languages a board uses, the first being its direction.
pub fn languages(choice: BoardLanguage, synagogue: Option<luach_content::Language>) -> Vec<Lang> {
    match choice {
        BoardLanguage::Hebrew => vec![Lang::He],
        BoardLanguage::English => vec![Lang::En],
        BoardLanguage::Both => vec![Lang::He, Lang::En],
        BoardLanguage::Synagogue => vec![synagogue.map_or(Lang::He, Lang::from)],
    }
}

/// Words in every language of the board, each language a paragraph of its own (so each keeps
/// its own direction: a Hebrew line, then an English line).
struct Words<'a>(&'a [Lang]);

impl Words<'_> {
    fn join(&self, f: impl Fn(Lang) -> String) -> String {
        let mut parts: Vec<String> = Vec::new();
        for lang in self.0 {
            let part = f(*lang);
            if !part.is_empty() && !parts.contains(&part) {
                parts.push(part);
            }
        }
        parts.join("\n")
    }
    fn label(&self, l: Label) -> String {
        self.join(|lang| names::label(l, lang).to_owned())
    }
    fn primary(&self) -> Lang {
        self.0.first().copied().unwrap_or(Lang::He)
    }
    /// A text the gabbai entered in both languages: the board's languages that are present,
    /// else whichever is.
    fn pick(&self, he: &str, en: &str) -> String {
        let chosen = self.join(|lang| match lang {
            Lang::He => he.trim().to_owned(),
            Lang::En => en.trim().to_owned(),
        });
        if chosen.is_empty() {
            if he.trim().is_empty() {
                en.trim().to_owned()
            } else {
                he.trim().to_owned()
            }
        } else {
            chosen
        }
    }
}

fn local(at: DateTime<Utc>, tz: Tz) -> chrono::DateTime<Tz> {
    at.with_timezone(&tz)
}

/// Composes the sheet of `bundle` at `at`. `language` is the screen's choice.
pub fn sheet(
    bundle: &Bundle,
    at: DateTime<Utc>,
    language: BoardLanguage,
    status: Status,
) -> Result<Sheet, ContentError> {
    let synagogue = bundle.synagogue.as_ref().ok_or(ContentError::NoSynagogue)?;
    let profile = &synagogue.input;
    let langs = languages(language, Some(profile.language));
    let words = Words(&langs);
    let location = luach_content::day::location(profile)?;
    let tz = location.tz();
    let now = local(at, tz);
    let date = now.date_naive();
    let today = bundle.screen_day(date)?;
    let display = &profile.display;
    let daily = |d: luach_content::DailyContent| display.daily.contains(&d);

    // The Hebrew date, switching at nightfall when the synagogue asks; the occasion follows it.
    let boundary = if display.hebrew_date_at_nightfall {
        DayBoundary::Nightfall
    } else {
        DayBoundary::Midnight
    };
    let hebrew = hebrew_date_at(at, &location, boundary)?;
    let evening = hebrew != today.synagogue_day.day.hebrew_date;
    let occasion_day = if evening {
        bundle.screen_day(date + Duration::days(1))?
    } else {
        today.clone()
    };
    let holidays: Vec<String> = if daily(luach_content::DailyContent::Holidays) {
        occasion_day.synagogue_day.day.holidays.clone()
    } else {
        Vec::new()
    };
    let occasion = if !holidays.is_empty() {
        words.join(|lang| {
            holidays
                .iter()
                .map(|h| names::holiday(h, lang))
                .collect::<Vec<_>>()
                .join(", ")
        })
    } else if daily(luach_content::DailyContent::Parsha) {
        words.join(|lang| names::parsha(&occasion_day.synagogue_day.day.parsha, lang))
    } else {
        String::new()
    };

    let zmanim = Group {
        title: words.label(Label::Zmanim),
        rows: display
            .zmanim
            .iter()
            .filter(|z| !matches!(z, Zman::CandleLighting | Zman::Havdalah) || zman_time(&today, **z).is_some())
            .map(|z| {
                Row::new(
                    words.join(|lang| names::zman(*z, lang).to_owned()),
                    zman_time(&today, *z).unwrap_or_else(|| names::label(Label::NoTime, words.primary()).to_owned()),
                )
            })
            .collect(),
    };

    let prayers = prayer_groups(bundle, &today, date, &words)?;
    let countdowns = countdowns(&today, at, &words, daily(luach_content::DailyContent::Timers));
    let cards = cards(&today, at, &words, &daily)?;

    let daf = daily(luach_content::DailyContent::DafYomi)
        .then_some(today.synagogue_day.day.daf_yomi.as_ref())
        .flatten();
    let omer = daily(luach_content::DailyContent::Omer)
        .then_some(occasion_day.synagogue_day.day.omer)
        .flatten();
    let footer = words.join(|lang| {
        let mut items = Vec::new();
        if let Some(daf) = daf {
            items.push(format!(
                "{}: {}",
                names::label(Label::DafYomi, lang),
                names::daf(daf, lang)
            ));
        }
        if let Some(omer) = omer {
            items.push(names::omer(omer, lang));
        }
        items.join("   ·   ")
    });
    let offline = status
        .offline_since
        .filter(|since| at - *since >= OFFLINE_AFTER)
        .map(|since| {
            let time = local(since, tz).format("%H:%M").to_string();
            words.join(|lang| format!("{} {time}", names::label(Label::Offline, lang)))
        });

    Ok(Sheet {
        rtl: words.primary().is_rtl(),
        name: profile.name.clone(),
        clock: now.format("%H:%M:%S").to_string(),
        gregorian: words.join(|lang| names::gregorian_date(date, lang)),
        hebrew: if daily(luach_content::DailyContent::HebrewDate) {
            words.join(|lang| names::hebrew_date(hebrew, lang))
        } else {
            String::new()
        },
        occasion,
        zmanim,
        prayers,
        countdowns,
        cards,
        footer,
        offline,
        page: u64::try_from(at.timestamp()).unwrap_or(0) / u64::from(display.page_seconds.max(1)),
    })
}

/// The zman as the synagogue shows it to the minute (rounded by its minute policy).
fn zman_time(day: &ScreenDay, z: Zman) -> Option<String> {
    day.synagogue_day.day.shown.get(z.key()).cloned()
}

fn schedule_rows(day: &ScreenDay, words: &Words<'_>) -> Vec<Row> {
    day.synagogue_day
        .schedule
        .iter()
        .map(|p| {
            Row::new(
                p.name.clone(),
                p.shown
                    .clone()
                    .unwrap_or_else(|| names::label(Label::NoTime, words.primary()).to_owned()),
            )
        })
        .collect()
}

/// Today's prayer times and, before Shabbat, the coming Shabbat's (candle lighting on Friday,
/// Shabbat's own times, havdalah).
fn prayer_groups(
    bundle: &Bundle,
    today: &ScreenDay,
    date: NaiveDate,
    words: &Words<'_>,
) -> Result<Vec<Group>, ContentError> {
    let candles = |day: &ScreenDay| {
        zman_time(day, Zman::CandleLighting)
            .map(|t| Row::new(words.join(|lang| names::zman(Zman::CandleLighting, lang).to_owned()), t))
    };
    let havdalah = |day: &ScreenDay| {
        zman_time(day, Zman::Havdalah)
            .map(|t| Row::new(words.join(|lang| names::zman(Zman::Havdalah, lang).to_owned()), t))
    };
    let mut first = Group {
        title: words.label(Label::PrayersToday),
        rows: Vec::new(),
    };
    first.rows.extend(candles(today));
    first.rows.extend(schedule_rows(today, words));
    let mut groups = Vec::new();
    if date.weekday() == Weekday::Sat {
        first.rows.extend(havdalah(today));
        groups.push(first);
    } else {
        groups.push(first);
        let days_to_sat =
            i64::from((Weekday::Sat.num_days_from_monday() + 7 - date.weekday().num_days_from_monday()) % 7);
        let saturday = bundle.screen_day(date + Duration::days(days_to_sat))?;
        let mut shabbat = Group {
            title: words.label(Label::ShabbatPrayers),
            rows: Vec::new(),
        };
        if days_to_sat > 1 {
            let friday = bundle.screen_day(date + Duration::days(days_to_sat - 1))?;
            shabbat.rows.extend(candles(&friday));
        }
        shabbat.rows.extend(schedule_rows(&saturday, words));
        shabbat.rows.extend(havdalah(&saturday));
        if !shabbat.rows.is_empty() {
            groups.push(shabbat);
        }
    }
    Ok(groups)
}

fn countdowns(today: &ScreenDay, at: DateTime<Utc>, words: &Words<'_>, shown: bool) -> Vec<Countdown> {
    if !shown {
        return Vec::new();
    }
    let mut out: Vec<(DateTime<Utc>, Countdown)> = today
        .synagogue_day
        .timers
        .iter()
        .filter_map(|t| {
            let target = DateTime::parse_from_rfc3339(&t.target).ok()?.with_timezone(&Utc);
            let from = DateTime::parse_from_rfc3339(&t.shows_from).ok()?.with_timezone(&Utc);
            (from <= at && at < target).then(|| {
                (
                    target,
                    Countdown {
                        label: words.pick(&t.label_he, &t.label_en),
                        remaining: names::countdown((target - at).num_seconds() + 1, words.primary()),
                    },
                )
            })
        })
        .collect();
    out.sort_by_key(|(target, _)| *target);
    out.into_iter().map(|(_, c)| c).collect()
}

fn cards(
    today: &ScreenDay,
    at: DateTime<Utc>,
    words: &Words<'_>,
    daily: &impl Fn(luach_content::DailyContent) -> bool,
) -> Result<Vec<Card>, ContentError> {
    use luach_content::DailyContent as D;
    let mut cards = Vec::new();
    if daily(D::Announcements) {
        for a in &today.announcements {
            let active = a.starts_at.is_none_or(|s| s <= at) && a.ends_at.is_none_or(|e| at < e);
            let text = words.pick(&a.text_he, &a.text_en);
            if active && !text.is_empty() {
                cards.push(Card::Text {
                    title: words.label(Label::Announcements),
                    text,
                });
            }
        }
    }
    if daily(D::Yahrzeits) && !today.yahrzeits.is_empty() {
        cards.push(Card::Rows(Group {
            title: words.label(Label::Yahrzeits),
            rows: today
                .yahrzeits
                .iter()
                .map(|y| {
                    let name = if y.family.trim().is_empty() {
                        y.name.clone()
                    } else {
                        format!("{} ({})", y.name, y.family)
                    };
                    Row::new(name, words.join(|lang| names::hebrew_date(y.hebrew_date, lang)))
                })
                .collect(),
        }));
    }
    if daily(D::Aliyot) {
        for reading in &today.synagogue_day.aliyot {
            let title = if reading.input.note.trim().is_empty() {
                words.label(Label::Aliyot)
            } else {
                format!("{} – {}", words.label(Label::Aliyot), reading.input.note.trim())
            };
            cards.push(Card::Rows(Group {
                title,
                rows: reading
                    .input
                    .honours
                    .iter()
                    .map(|h| {
                        Row::new(
                            words.join(|lang| names::honour(h.honour, lang).to_owned()),
                            h.name.clone(),
                        )
                    })
                    .collect(),
            }));
        }
    }
    if daily(D::Shiurim) && !today.synagogue_day.shiurim.is_empty() {
        cards.push(Card::Rows(Group {
            title: words.label(Label::Shiurim),
            rows: today
                .synagogue_day
                .shiurim
                .iter()
                .map(|s| {
                    let mut label = format!("{} – {}", s.title, s.teacher);
                    if !s.location.trim().is_empty() {
                        label = format!("{label} ({})", s.location.trim());
                    }
                    Row::new(
                        label,
                        s.shown
                            .clone()
                            .unwrap_or_else(|| names::label(Label::NoTime, words.primary()).to_owned()),
                    )
                })
                .collect(),
        }));
    }
    Ok(cards)
}
