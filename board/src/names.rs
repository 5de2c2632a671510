//! Every word the board draws, in Hebrew and English.
//!
//! The calendar speaks hebcal's English names (`Pesach II (CH''M)`, `Rosh Chodesh Adar I`,
//! `Chanukah: 3 Candles`); this module turns them into the Hebrew a synagogue board shows. Fixed
//! names are tables; names hebcal builds from parts (years, months, Roman day numbers,
//! `Erev …`, `… (CH''M)`, `… (observed)`) are taken apart and translated piece by piece, so a
//! new year or month never falls back to English. A name nothing here knows is returned as it
//! came, never a panic. Hebrew uses gershayim ״ and geresh ׳, and only characters the built-in
//! Noto Sans and Noto Sans Hebrew fonts carry.

use chrono::{Datelike, NaiveDate, Weekday};
use luach_calendar::gematriya::gematriya;
use luach_calendar::parsha::PARSHIYOT;
use luach_calendar::{Daf, HebrewDate, HebrewMonth, Zman};
use luach_content::HonourKind;

/// A language the board draws in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Hebrew (right to left).
    He,
    /// English.
    En,
}

impl From<luach_content::Language> for Lang {
    fn from(l: luach_content::Language) -> Self {
        match l {
            luach_content::Language::He => Lang::He,
            luach_content::Language::En => Lang::En,
        }
    }
}

impl Lang {
    /// Whether text in this language runs right to left.
    pub fn is_rtl(self) -> bool {
        matches!(self, Lang::He)
    }
}

/// Picks the Hebrew or the English text.
fn pick(lang: Lang, he: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::He => he,
        Lang::En => en,
    }
}

/// The name of a zman, distinct for every variant.
pub fn zman(z: Zman, lang: Lang) -> &'static str {
    let (he, en) = match z {
        Zman::Sunrise => ("הנץ החמה", "Sunrise"),
        Zman::Sunset => ("שקיעה", "Sunset"),
        Zman::SeaLevelSunrise => ("הנץ החמה (מישורי)", "Sunrise (sea level)"),
        Zman::SeaLevelSunset => ("שקיעה (מישורית)", "Sunset (sea level)"),
        Zman::Alot16_1 => ("עלות השחר (16.1°)", "Dawn (16.1°)"),
        Zman::Alot72 => ("עלות השחר (72 דק׳)", "Dawn (72 min)"),
        Zman::Misheyakir11_5 => ("משיכיר (11.5°)", "Misheyakir (11.5°)"),
        Zman::SofZmanShmaGra => ("סוף זמן ק״ש (גר״א)", "Latest Shema (GRA)"),
        Zman::SofZmanShmaMga => ("סוף זמן ק״ש (מג״א)", "Latest Shema (MGA)"),
        Zman::SofZmanTefilaGra => ("סוף זמן תפילה (גר״א)", "Latest Shacharit (GRA)"),
        Zman::SofZmanTefilaMga => ("סוף זמן תפילה (מג״א)", "Latest Shacharit (MGA)"),
        Zman::Chatzot => ("חצות", "Midday"),
        Zman::ChatzotHalfDay => ("חצות (מחצית היום)", "Midday (half day)"),
        Zman::MinchaGedola => ("מנחה גדולה", "Earliest Mincha"),
        Zman::MinchaKetana => ("מנחה קטנה", "Mincha Ketana"),
        Zman::PlagHamincha => ("פלג המנחה", "Plag HaMincha"),
        Zman::Tzeit8_5 => ("צאת הכוכבים", "Nightfall"),
        Zman::Tzeit72 => ("צאת הכוכבים (72 דק׳)", "Nightfall (72 min)"),
        Zman::CandleLighting => ("הדלקת נרות", "Candle lighting"),
        Zman::Havdalah => ("הבדלה", "Havdalah"),
    };
    pick(lang, he, en)
}

/// Holiday names hebcal gives whole (and holiday readings), with their Hebrew.
const HOLIDAYS: &[(&str, &str)] = &[
    ("Rosh Hashana", "ראש השנה"),
    ("Rosh Hashana LaBehemot", "ראש השנה לבהמות"),
    ("Tzom Gedaliah", "צום גדליה"),
    ("Shabbat Shuva", "שבת שובה"),
    ("Yom Kippur", "יום כיפור"),
    ("Yom Kippur Katan", "יום כיפור קטן"),
    ("Sukkot", "סוכות"),
    ("Sukkot VII (Hoshana Raba)", "הושענא רבה"),
    ("Sukkot Shabbat Chol ha-Moed", "שבת חול המועד סוכות"),
    ("Shmini Atzeret", "שמיני עצרת"),
    ("Simchat Torah", "שמחת תורה"),
    ("Chanukah", "חנוכה"),
    ("Chanukah: 8th Day", "זאת חנוכה"),
    ("Chag HaBanot", "חג הבנות"),
    ("Asara B'Tevet", "עשרה בטבת"),
    ("Tu BiShvat", "ט״ו בשבט"),
    ("Purim Katan", "פורים קטן"),
    ("Shushan Purim Katan", "שושן פורים קטן"),
    ("Shabbat Shekalim", "שבת שקלים"),
    ("Shabbat Zachor", "שבת זכור"),
    ("Ta'anit Esther", "תענית אסתר"),
    ("Purim", "פורים"),
    ("Shushan Purim", "שושן פורים"),
    ("Purim Meshulash", "פורים המשולש"),
    ("Shabbat Parah", "שבת פרה"),
    ("Shabbat HaChodesh", "שבת החודש"),
    ("Shabbat HaGadol", "שבת הגדול"),
    ("Ta'anit Bechorot", "תענית בכורות"),
    ("Pesach", "פסח"),
    ("Pesach VII", "שביעי של פסח"),
    ("Pesach VIII", "אחרון של פסח"),
    ("Pesach Shabbat Chol ha-Moed", "שבת חול המועד פסח"),
    ("Pesach Sheni", "פסח שני"),
    ("Yom HaShoah", "יום השואה"),
    ("Yom HaZikaron", "יום הזיכרון"),
    ("Yom HaAtzma'ut", "יום העצמאות"),
    ("Yom Yerushalayim", "יום ירושלים"),
    ("Lag BaOmer", "ל״ג בעומר"),
    ("Shavuot", "שבועות"),
    ("Tzom Tammuz", "צום י״ז בתמוז"),
    ("Shabbat Chazon", "שבת חזון"),
    ("Tish'a B'Av", "תשעה באב"),
    ("Shabbat Nachamu", "שבת נחמו"),
    ("Tu B'Av", "ט״ו באב"),
    ("Leil Selichot", "ליל סליחות"),
    ("Shabbat Shirah", "שבת שירה"),
    ("Birkat Hachamah", "ברכת החמה"),
    // Names hebcal has that this calendar does not produce today.
    ("Shabbat Rosh Chodesh", "שבת ראש חודש"),
    ("Shabbat Machar Chodesh", "שבת מחר חודש"),
    ("Sigd", "סיגד"),
    ("Yom HaAliyah", "יום העלייה"),
    ("Herzl Day", "יום הרצל"),
    ("Jabotinsky Day", "יום ז׳בוטינסקי"),
    ("Ben-Gurion Day", "יום בן-גוריון"),
    ("Family Day", "יום המשפחה"),
    ("Hebrew Language Day", "יום השפה העברית"),
    ("Yitzhak Rabin Memorial Day", "יום הזיכרון ליצחק רבין"),
];

/// Ordinals (masculine), 1–8: the Chanukah candles.
const ORDINALS: [&str; 8] = ["ראשון", "שני", "שלישי", "רביעי", "חמישי", "שישי", "שביעי", "שמיני"];

/// A holiday's name: hebcal's English name in Hebrew; English returns it unchanged, and so does
/// Hebrew for a name it does not know.
pub fn holiday(name: &str, lang: Lang) -> String {
    match lang {
        Lang::En => name.to_owned(),
        Lang::He => holiday_he(name).unwrap_or_else(|| name.to_owned()),
    }
}

/// The Hebrew of a hebcal holiday name, built from its parts where hebcal builds it so.
fn holiday_he(name: &str) -> Option<String> {
    if let Some((_, he)) = HOLIDAYS.iter().find(|(en, _)| *en == name) {
        return Some((*he).to_owned());
    }
    if let Some(rest) = name.strip_suffix(" (CH''M)") {
        return holiday_he(rest).map(|he| format!("{he} (חוה״מ)"));
    }
    if let Some(rest) = name.strip_suffix(" (observed)") {
        return holiday_he(rest).map(|he| format!("{he} (נדחה)"));
    }
    if let Some(rest) = name.strip_prefix("Erev ") {
        return holiday_he(rest).map(|he| format!("ערב {he}"));
    }
    if let Some(month) = name.strip_prefix("Rosh Chodesh ") {
        return month_he(month).map(|he| format!("ראש חודש {he}"));
    }
    if let Some(month) = name.strip_prefix("Shabbat Mevarchim Chodesh ") {
        return month_he(month).map(|he| format!("שבת מברכים חודש {he}"));
    }
    if let Some(month) = name.strip_prefix("Yom Kippur Katan ") {
        return month_he(month).map(|he| format!("יום כיפור קטן {he}"));
    }
    if let Some(candles) = name.strip_prefix("Chanukah: ") {
        let n = candles
            .strip_suffix(" Candles")
            .or_else(|| candles.strip_suffix(" Candle"))?
            .parse::<usize>()
            .ok()?;
        let ordinal = ORDINALS.get(n.checked_sub(1)?)?;
        return Some(format!("חנוכה: נר {ordinal}"));
    }
    // "<holiday> <Roman day>" (Pesach II, Shavuot I) or "Rosh Hashana <year>".
    let (base, last) = name.rsplit_once(' ')?;
    let base_he = HOLIDAYS.iter().find(|(en, _)| *en == base).map(|(_, he)| *he)?;
    if let Some(n) = roman(last) {
        return Some(format!("{base_he} {}", gematriya(n)));
    }
    if base == "Rosh Hashana" {
        let year = last.parse::<u32>().ok()?;
        return Some(format!("{base_he} {}", gematriya(year % 1000)));
    }
    None
}

/// A Roman day number I–VIII.
fn roman(s: &str) -> Option<u32> {
    let n = match s {
        "I" => 1,
        "II" => 2,
        "III" => 3,
        "IV" => 4,
        "V" => 5,
        "VI" => 6,
        "VII" => 7,
        "VIII" => 8,
        _ => return None,
    };
    Some(n)
}

/// The Hebrew name of a month as hebcal spells it in English (`Sh'vat`, `Adar I`).
fn month_he(name: &str) -> Option<&'static str> {
    // A leap and a common year: between them every spelling hebcal uses occurs.
    const YEARS: [i32; 2] = [5784, 5785];
    let name = match name {
        "Shvat" => "Sh'vat",
        "Iyar" => "Iyyar",
        "Tammuz" => "Tamuz",
        other => other,
    };
    HebrewMonth::ALL
        .into_iter()
        .find_map(|m| YEARS.into_iter().find(|y| m.name(*y) == name).map(|y| m.hebrew_name(y)))
}

/// The 54 portions in Hebrew, in the order of [`PARSHIYOT`].
const PARSHIYOT_HE: [&str; 54] = [
    "בראשית",
    "נח",
    "לך לך",
    "וירא",
    "חיי שרה",
    "תולדות",
    "ויצא",
    "וישלח",
    "וישב",
    "מקץ",
    "ויגש",
    "ויחי",
    "שמות",
    "וארא",
    "בא",
    "בשלח",
    "יתרו",
    "משפטים",
    "תרומה",
    "תצוה",
    "כי תשא",
    "ויקהל",
    "פקודי",
    "ויקרא",
    "צו",
    "שמיני",
    "תזריע",
    "מצורע",
    "אחרי מות",
    "קדושים",
    "אמור",
    "בהר",
    "בחוקותי",
    "במדבר",
    "נשא",
    "בהעלותך",
    "שלח",
    "קרח",
    "חוקת",
    "בלק",
    "פינחס",
    "מטות",
    "מסעי",
    "דברים",
    "ואתחנן",
    "עקב",
    "ראה",
    "שופטים",
    "כי תצא",
    "כי תבוא",
    "נצבים",
    "וילך",
    "האזינו",
    "וזאת הברכה",
];

/// The Hebrew of one portion's hebcal name.
fn portion_he(name: &str) -> Option<&'static str> {
    let i = PARSHIYOT.iter().position(|p| *p == name)?;
    PARSHIYOT_HE.get(i).copied()
}

/// A Shabbat's reading, from `Reading::names()`: one portion or two combined ("פרשת
/// ויקהל-פקודי", "Parashat Vayakhel-Pekudei"), or a holiday reading (its holiday name).
pub fn parsha(reading: &[String], lang: Lang) -> String {
    if reading.is_empty() {
        return String::new();
    }
    let portions: Option<Vec<&'static str>> = reading.iter().map(|n| portion_he(n)).collect();
    match (portions, lang) {
        (Some(he), Lang::He) => format!("פרשת {}", he.join("-")),
        (Some(_), Lang::En) => format!("Parashat {}", reading.join("-")),
        (None, _) => reading
            .iter()
            .map(|n| portion_he(n).map_or_else(|| holiday(n, lang), |he| he.to_owned()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Tractates of the daf yomi cycle, hebcal spelling, with their Hebrew.
const TRACTATES: [(&str, &str); 40] = [
    ("Berachot", "ברכות"),
    ("Shabbat", "שבת"),
    ("Eruvin", "עירובין"),
    ("Pesachim", "פסחים"),
    ("Shekalim", "שקלים"),
    ("Yoma", "יומא"),
    ("Sukkah", "סוכה"),
    ("Beitzah", "ביצה"),
    ("Rosh Hashana", "ראש השנה"),
    ("Taanit", "תענית"),
    ("Megillah", "מגילה"),
    ("Moed Katan", "מועד קטן"),
    ("Chagigah", "חגיגה"),
    ("Yevamot", "יבמות"),
    ("Ketubot", "כתובות"),
    ("Nedarim", "נדרים"),
    ("Nazir", "נזיר"),
    ("Sotah", "סוטה"),
    ("Gitin", "גיטין"),
    ("Kiddushin", "קידושין"),
    ("Baba Kamma", "בבא קמא"),
    ("Baba Metzia", "בבא מציעא"),
    ("Baba Batra", "בבא בתרא"),
    ("Sanhedrin", "סנהדרין"),
    ("Makkot", "מכות"),
    ("Shevuot", "שבועות"),
    ("Avodah Zarah", "עבודה זרה"),
    ("Horayot", "הוריות"),
    ("Zevachim", "זבחים"),
    ("Menachot", "מנחות"),
    ("Chullin", "חולין"),
    ("Bechorot", "בכורות"),
    ("Arachin", "ערכין"),
    ("Temurah", "תמורה"),
    ("Keritot", "כריתות"),
    ("Meilah", "מעילה"),
    ("Kinnim", "קינים"),
    ("Tamid", "תמיד"),
    ("Midot", "מידות"),
    ("Niddah", "נדה"),
];

/// A tractate's name (hebcal spelling in, Hebrew or unchanged English out).
pub fn tractate(name: &str, lang: Lang) -> String {
    match lang {
        Lang::En => name.to_owned(),
        Lang::He => TRACTATES
            .iter()
            .find(|(en, _)| *en == name)
            .map_or(name, |(_, he)| *he)
            .to_owned(),
    }
}

/// A daf yomi page: "ברכות ב׳", "Berachot 2".
pub fn daf(d: &Daf, lang: Lang) -> String {
    match lang {
        Lang::He => format!("{} {}", tractate(d.tractate, lang), gematriya(u32::from(d.page))),
        Lang::En => format!("{} {}", d.tractate, d.page),
    }
}

/// Cardinal numbers (masculine) 0–9, as the omer counts them.
const UNITS: [&str; 10] = [
    "",
    "אחד",
    "שנים",
    "שלושה",
    "ארבעה",
    "חמישה",
    "שישה",
    "שבעה",
    "שמונה",
    "תשעה",
];

/// The omer count in words, masculine, 3–49 ("שלושה ועשרים").
fn omer_number(n: u8) -> String {
    const TENS: [&str; 5] = ["", "עשרה", "עשרים", "שלושים", "ארבעים"];
    let (tens, units) = (usize::from(n / 10), usize::from(n % 10));
    let (tens_word, unit_word) = (TENS.get(tens).copied().unwrap_or(""), UNITS[units]);
    match (tens, units) {
        (0, _) => unit_word.to_owned(),
        (1, 0) => tens_word.to_owned(),
        (1, _) => format!("{unit_word} עשר"),
        (_, 0) => tens_word.to_owned(),
        _ => format!("{unit_word} ו{tens_word}"),
    }
}

/// The omer count of `day` (1–49) as said: "היום שלושה ועשרים יום שהם שלושה שבועות ושני ימים
/// לעומר", "Day 23 of the Omer"; empty outside 1–49.
pub fn omer(day: u8, lang: Lang) -> String {
    if !(1..=49).contains(&day) {
        return String::new();
    }
    if lang == Lang::En {
        return format!("Day {day} of the Omer");
    }
    let days = match day {
        1 => "יום אחד".to_owned(),
        2 => "שני ימים".to_owned(),
        3..=10 => format!("{} ימים", omer_number(day)),
        _ => format!("{} יום", omer_number(day)),
    };
    let (weeks, rest) = (day / 7, usize::from(day % 7));
    if weeks == 0 {
        return format!("היום {days} לעומר");
    }
    let weeks = match weeks {
        1 => "שבוע אחד".to_owned(),
        2 => "שני שבועות".to_owned(),
        w => format!("{} שבועות", UNITS[usize::from(w)]),
    };
    let rest = match rest {
        0 => String::new(),
        1 => " ויום אחד".to_owned(),
        2 => " ושני ימים".to_owned(),
        r => format!(" ו{} ימים", UNITS[r]),
    };
    format!("היום {days} שהם {weeks}{rest} לעומר")
}

/// The name of a day of the week: "יום ראשון" … "יום שישי", "שבת"; "Sunday" … "Saturday".
pub fn weekday(w: Weekday, lang: Lang) -> &'static str {
    let (he, en) = match w {
        Weekday::Sun => ("יום ראשון", "Sunday"),
        Weekday::Mon => ("יום שני", "Monday"),
        Weekday::Tue => ("יום שלישי", "Tuesday"),
        Weekday::Wed => ("יום רביעי", "Wednesday"),
        Weekday::Thu => ("יום חמישי", "Thursday"),
        Weekday::Fri => ("יום שישי", "Friday"),
        Weekday::Sat => ("שבת", "Saturday"),
    };
    pick(lang, he, en)
}

/// Civil months: Hebrew with the "in" prefix used in dates, and English.
const MONTHS: [(&str, &str); 12] = [
    ("בינואר", "January"),
    ("בפברואר", "February"),
    ("במרץ", "March"),
    ("באפריל", "April"),
    ("במאי", "May"),
    ("ביוני", "June"),
    ("ביולי", "July"),
    ("באוגוסט", "August"),
    ("בספטמבר", "September"),
    ("באוקטובר", "October"),
    ("בנובמבר", "November"),
    ("בדצמבר", "December"),
];

/// A civil date with its weekday: "Friday, 4 December 2026", "יום שישי, 4 בדצמבר 2026".
pub fn gregorian_date(d: NaiveDate, lang: Lang) -> String {
    let (he, en) = MONTHS[d.month0() as usize % 12];
    format!(
        "{}, {} {} {}",
        weekday(d.weekday(), lang),
        d.day(),
        pick(lang, he, en),
        d.year()
    )
}

/// A Hebrew date: "כ״ג כסלו תשפ״ז", "23 Kislev 5787".
pub fn hebrew_date(d: HebrewDate, lang: Lang) -> String {
    match lang {
        Lang::He => d.to_hebrew_string(),
        Lang::En => format!("{} {} {}", d.day(), d.month_name(), d.year()),
    }
}

/// The name of an honour at the Torah reading.
pub fn honour(h: HonourKind, lang: Lang) -> &'static str {
    let (he, en) = match h {
        HonourKind::Kohen => ("כהן", "Kohen"),
        HonourKind::Levi => ("לוי", "Levi"),
        HonourKind::Shlishi => ("שלישי", "Shlishi"),
        HonourKind::Revii => ("רביעי", "Revi'i"),
        HonourKind::Chamishi => ("חמישי", "Chamishi"),
        HonourKind::Shishi => ("שישי", "Shishi"),
        HonourKind::Shevii => ("שביעי", "Shevi'i"),
        HonourKind::Acharon => ("אחרון", "Acharon"),
        HonourKind::Maftir => ("מפטיר", "Maftir"),
        HonourKind::Hagbaha => ("הגבהה", "Hagbaha"),
        HonourKind::Gelila => ("גלילה", "Gelila"),
        HonourKind::Extra => ("הוספה", "Additional aliyah"),
    };
    pick(lang, he, en)
}

/// Time left, "1:05:09" from an hour up, "5:09" below; a negative time is "0:00". The digits are
/// the same in both languages.
pub fn countdown(seconds: i64, lang: Lang) -> String {
    let _ = lang;
    let s = seconds.max(0);
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{sec:02}")
    } else {
        format!("{m}:{sec:02}")
    }
}

/// Years since a passing, for a yahrzeit: "שנה", "שנתיים", "3 שנים", "30 שנה"; "1 year",
/// "30 years". Empty for less than a year.
pub fn years_since(years: i32, lang: Lang) -> String {
    match (lang, years) {
        (_, ..=0) => String::new(),
        (Lang::He, 1) => "שנה".to_owned(),
        (Lang::He, 2) => "שנתיים".to_owned(),
        (Lang::He, 3..=10) => format!("{years} שנים"),
        (Lang::He, _) => format!("{years} שנה"),
        (Lang::En, 1) => "1 year".to_owned(),
        (Lang::En, _) => format!("{years} years"),
    }
}

/// Fixed labels the board draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// Heading of the zmanim panel.
    Zmanim,
    /// Heading of today's prayer times.
    PrayersToday,
    /// Shabbat.
    Shabbat,
    /// Heading of the coming Shabbat's times.
    ShabbatPrayers,
    /// Heading of the announcements.
    Announcements,
    /// Heading of this week's yahrzeits.
    Yahrzeits,
    /// Heading of the Torah-reading honours.
    Aliyot,
    /// Heading of the lessons.
    Shiurim,
    /// Heading of the countdowns.
    Timers,
    /// Daf yomi.
    DafYomi,
    /// The omer count.
    Omer,
    /// The weekly portion.
    ParshaOf,
    /// Prefix of "offline since <time>".
    Offline,
    /// No synagogue is assigned to the screen.
    NoSynagogue,
    /// What to do about it.
    NoSynagogueHint,
    /// Title of the claim-code page.
    ClaimTitle,
    /// Where to enter the claim code.
    ClaimHint,
    /// Today.
    Today,
    /// Tomorrow.
    Tomorrow,
    /// A time that does not occur.
    NoTime,
    /// A panel continued from the previous page.
    Continued,
}

impl Label {
    /// Every label.
    pub const ALL: [Label; 21] = [
        Label::Zmanim,
        Label::PrayersToday,
        Label::Shabbat,
        Label::ShabbatPrayers,
        Label::Announcements,
        Label::Yahrzeits,
        Label::Aliyot,
        Label::Shiurim,
        Label::Timers,
        Label::DafYomi,
        Label::Omer,
        Label::ParshaOf,
        Label::Offline,
        Label::NoSynagogue,
        Label::NoSynagogueHint,
        Label::ClaimTitle,
        Label::ClaimHint,
        Label::Today,
        Label::Tomorrow,
        Label::NoTime,
        Label::Continued,
    ];
}

/// A fixed label's text.
pub fn label(l: Label, lang: Lang) -> &'static str {
    let (he, en) = match l {
        Label::Zmanim => ("זמני היום", "Zmanim"),
        Label::PrayersToday => ("זמני תפילות", "Prayer times"),
        Label::Shabbat => ("שבת", "Shabbat"),
        Label::ShabbatPrayers => ("זמני השבת", "This Shabbat"),
        Label::Announcements => ("הודעות", "Announcements"),
        Label::Yahrzeits => ("יארצייט השבוע", "Yahrzeits this week"),
        Label::Aliyot => ("עליות לתורה", "Aliyot"),
        Label::Shiurim => ("שיעורים", "Shiurim"),
        Label::Timers => ("ספירה לאחור", "Countdown"),
        Label::DafYomi => ("דף יומי", "Daf Yomi"),
        Label::Omer => ("ספירת העומר", "Omer"),
        Label::ParshaOf => ("פרשת השבוע", "Parashat HaShavua"),
        Label::Offline => ("לא מחובר מאז", "Offline since"),
        Label::NoSynagogue => (
            "עדיין לא שויך בית כנסת למסך זה",
            "No synagogue is assigned to this screen yet",
        ),
        Label::NoSynagogueHint => (
            "יש לשייך את המסך לבית כנסת בלוח הבקרה",
            "Assign this screen to a synagogue in the dashboard",
        ),
        Label::ClaimTitle => ("שיוך המסך", "Claim this screen"),
        Label::ClaimHint => (
            "הזינו קוד זה בלוח הבקרה, בעמוד ״מסכים״ תחת ״שיוך״",
            "Enter this code in the dashboard under Screens › Claim",
        ),
        Label::Today => ("היום", "Today"),
        Label::Tomorrow => ("מחר", "Tomorrow"),
        Label::NoTime => ("—", "—"),
        Label::Continued => ("(המשך)", "(continued)"),
    };
    pick(lang, he, en)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    const LANGS: [Lang; 2] = [Lang::He, Lang::En];

    fn is_hebrew_letter(c: char) -> bool {
        ('\u{05D0}'..='\u{05EA}').contains(&c)
    }

    /// Hebrew letters and no Latin ones: nothing fell back to English.
    fn assert_hebrew(english: &str, hebrew: &str) {
        assert!(
            hebrew.chars().any(is_hebrew_letter) && !hebrew.chars().any(|c| c.is_ascii_alphabetic()),
            "{english:?} -> {hebrew:?} is not Hebrew"
        );
    }

    /// Only characters the built-in fonts carry.
    fn assert_drawable(s: &str) {
        for c in s.chars() {
            let ok =
                c.is_ascii() || ('\u{05D0}'..='\u{05EA}').contains(&c) || ['״', '׳', '–', '—', '°', '›'].contains(&c);
            assert!(ok, "{s:?} has {c:?} (U+{:04X})", u32::from(c));
        }
    }

    #[test]
    fn languages() {
        assert_eq!(Lang::from(luach_content::Language::He), Lang::He);
        assert_eq!(Lang::from(luach_content::Language::En), Lang::En);
        assert!(Lang::He.is_rtl() && !Lang::En.is_rtl());
    }

    #[test]
    fn every_zman_has_distinct_names() {
        for lang in LANGS {
            let names: HashSet<&str> = Zman::ALL.iter().map(|z| zman(*z, lang)).collect();
            assert_eq!(names.len(), Zman::ALL.len(), "{lang:?}");
            for z in Zman::ALL {
                let n = zman(z, lang);
                assert!(!n.is_empty());
                assert_drawable(n);
                if lang == Lang::He {
                    assert_hebrew(z.key(), n);
                }
            }
        }
        assert_eq!(zman(Zman::SofZmanShmaGra, Lang::He), "סוף זמן ק״ש (גר״א)");
        assert_eq!(zman(Zman::Alot16_1, Lang::En), "Dawn (16.1°)");
    }

    #[test]
    fn every_holiday_of_two_decades_is_hebrew() {
        let mut seen = BTreeSet::new();
        for year in 5780..=5800 {
            for il in [true, false] {
                for h in luach_calendar::holidays::holidays_of_year(year, il).unwrap() {
                    seen.insert(h.name);
                }
            }
        }
        assert!(seen.len() > 60, "{seen:?}");
        for name in &seen {
            let he = holiday(name, Lang::He);
            assert_hebrew(name, &he);
            assert_drawable(&he);
            assert_eq!(holiday(name, Lang::En), *name);
        }
    }

    #[test]
    fn holiday_examples() {
        let he = |n| holiday(n, Lang::He);
        assert_eq!(he("Pesach II"), "פסח ב׳");
        assert_eq!(he("Pesach II (CH''M)"), "פסח ב׳ (חוה״מ)");
        assert_eq!(he("Chanukah: 3 Candles"), "חנוכה: נר שלישי");
        assert_eq!(he("Chanukah: 1 Candle"), "חנוכה: נר ראשון");
        assert_eq!(he("Rosh Chodesh Adar I"), "ראש חודש אדר א׳");
        assert_eq!(he("Rosh Chodesh Sh'vat"), "ראש חודש שבט");
        assert_eq!(he("Rosh Hashana 5785"), "ראש השנה תשפ״ה");
        assert_eq!(he("Erev Yom Kippur"), "ערב יום כיפור");
        assert_eq!(he("Tish'a B'Av (observed)"), "תשעה באב (נדחה)");
        assert_eq!(he("Yom HaAtzma'ut"), "יום העצמאות");
        assert_eq!(he("Something new"), "Something new");
        assert_eq!(he("Chanukah: 9 Candles"), "Chanukah: 9 Candles");
        assert_eq!(he("Chanukah: 0 Candles"), "Chanukah: 0 Candles");
        assert_eq!(he(""), "");
    }

    #[test]
    fn every_reading_of_two_decades_is_hebrew() {
        let mut seen = BTreeSet::new();
        for year in 5780..=5800 {
            for il in [true, false] {
                for (_, r) in luach_calendar::parsha::year_schedule(year, il).unwrap() {
                    seen.insert(r.names());
                }
            }
        }
        for names in &seen {
            let he = parsha(names, Lang::He);
            assert_hebrew(&names.join("-"), &he);
            assert_drawable(&he);
            assert!(!parsha(names, Lang::En).is_empty());
        }
        let v = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(parsha(&v(&["Vayakhel", "Pekudei"]), Lang::He), "פרשת ויקהל-פקודי");
        assert_eq!(
            parsha(&v(&["Vayakhel", "Pekudei"]), Lang::En),
            "Parashat Vayakhel-Pekudei"
        );
        assert_eq!(
            parsha(&v(&["Sukkot Shabbat Chol ha-Moed"]), Lang::He),
            "שבת חול המועד סוכות"
        );
        assert_eq!(
            parsha(&v(&["Sukkot Shabbat Chol ha-Moed"]), Lang::En),
            "Sukkot Shabbat Chol ha-Moed"
        );
        assert_eq!(parsha(&[], Lang::He), "");
        // Every portion, even one no schedule above reads alone.
        for p in PARSHIYOT {
            assert_hebrew(p, &parsha(&v(&[p]), Lang::He));
        }
    }

    #[test]
    fn every_tractate_of_a_cycle_is_hebrew() {
        let start = NaiveDate::from_ymd_opt(2020, 1, 5).unwrap();
        let mut seen = BTreeSet::new();
        for i in 0..2711 {
            let d = luach_calendar::daf_yomi(start + chrono::Duration::days(i)).unwrap();
            assert_hebrew(d.tractate, &daf(&d, Lang::He));
            seen.insert(d.tractate);
        }
        assert_eq!(seen.len(), 40);
        for t in seen {
            assert_hebrew(t, &tractate(t, Lang::He));
            assert_eq!(tractate(t, Lang::En), t);
        }
        let d = Daf {
            tractate: "Berachot",
            page: 2,
        };
        assert_eq!(daf(&d, Lang::He), "ברכות ב׳");
        assert_eq!(daf(&d, Lang::En), "Berachot 2");
    }

    #[test]
    fn omer_counts() {
        for day in 1..=49 {
            for lang in LANGS {
                let s = omer(day, lang);
                assert!(!s.is_empty());
                assert_drawable(&s);
            }
            assert_hebrew("omer", &omer(day, Lang::He));
        }
        for lang in LANGS {
            assert_eq!(omer(0, lang), "");
            assert_eq!(omer(50, lang), "");
        }
        assert_eq!(
            omer(23, Lang::He),
            "היום שלושה ועשרים יום שהם שלושה שבועות ושני ימים לעומר"
        );
        assert_eq!(omer(1, Lang::He), "היום יום אחד לעומר");
        assert_eq!(omer(2, Lang::He), "היום שני ימים לעומר");
        assert_eq!(omer(7, Lang::He), "היום שבעה ימים שהם שבוע אחד לעומר");
        assert_eq!(omer(10, Lang::He), "היום עשרה ימים שהם שבוע אחד ושלושה ימים לעומר");
        assert_eq!(omer(12, Lang::He), "היום שנים עשר יום שהם שבוע אחד וחמישה ימים לעומר");
        assert_eq!(
            omer(33, Lang::He),
            "היום שלושה ושלושים יום שהם ארבעה שבועות וחמישה ימים לעומר"
        );
        assert_eq!(omer(40, Lang::He), "היום ארבעים יום שהם חמישה שבועות וחמישה ימים לעומר");
        assert_eq!(omer(49, Lang::He), "היום תשעה וארבעים יום שהם שבעה שבועות לעומר");
        assert_eq!(omer(23, Lang::En), "Day 23 of the Omer");
    }

    #[test]
    fn dates() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        assert_eq!(gregorian_date(d, Lang::En), "Friday, 4 December 2026");
        assert_eq!(gregorian_date(d, Lang::He), "יום שישי, 4 בדצמבר 2026");
        let h = HebrewDate::new(5787, HebrewMonth::Kislev, 23).unwrap();
        assert_eq!(hebrew_date(h, Lang::En), "23 Kislev 5787");
        assert_eq!(hebrew_date(h, Lang::He), "כ״ג כסלו תשפ״ז");
        assert_eq!(weekday(Weekday::Sat, Lang::He), "שבת");
        assert_eq!(weekday(Weekday::Sun, Lang::He), "יום ראשון");
    }

    #[test]
    fn honours_are_distinct() {
        use HonourKind::*;
        let all = [
            Kohen, Levi, Shlishi, Revii, Chamishi, Shishi, Shevii, Acharon, Maftir, Hagbaha, Gelila, Extra,
        ];
        for lang in LANGS {
            let names: HashSet<&str> = all.iter().map(|h| honour(*h, lang)).collect();
            assert_eq!(names.len(), all.len());
        }
        for h in all {
            assert_hebrew(honour(h, Lang::En), honour(h, Lang::He));
        }
        assert_eq!(honour(Extra, Lang::En), "Additional aliyah");
    }

    #[test]
    fn countdowns() {
        for lang in LANGS {
            assert_eq!(countdown(3909, lang), "1:05:09");
            assert_eq!(countdown(309, lang), "5:09");
            assert_eq!(countdown(3600, lang), "1:00:00");
            assert_eq!(countdown(3599, lang), "59:59");
            assert_eq!(countdown(0, lang), "0:00");
            assert_eq!(countdown(-5, lang), "0:00");
            assert_eq!(countdown(i64::MIN, lang), "0:00");
            assert_eq!(countdown(36 * 3600 + 1, lang), "36:00:01");
        }
    }

    #[test]
    fn years() {
        assert_eq!(years_since(30, Lang::En), "30 years");
        assert_eq!(years_since(1, Lang::En), "1 year");
        assert_eq!(years_since(30, Lang::He), "30 שנה");
        assert_eq!(years_since(5, Lang::He), "5 שנים");
        assert_eq!(years_since(2, Lang::He), "שנתיים");
        assert_eq!(years_since(1, Lang::He), "שנה");
        assert_eq!(years_since(0, Lang::He), "");
        assert_eq!(years_since(-3, Lang::En), "");
    }

    /// Position of each variant; a new variant does not compile until it has one here.
    fn ordinal(l: Label) -> usize {
        match l {
            Label::Zmanim => 0,
            Label::PrayersToday => 1,
            Label::Shabbat => 2,
            Label::ShabbatPrayers => 3,
            Label::Announcements => 4,
            Label::Yahrzeits => 5,
            Label::Aliyot => 6,
            Label::Shiurim => 7,
            Label::Timers => 8,
            Label::DafYomi => 9,
            Label::Omer => 10,
            Label::ParshaOf => 11,
            Label::Offline => 12,
            Label::NoSynagogue => 13,
            Label::NoSynagogueHint => 14,
            Label::ClaimTitle => 15,
            Label::ClaimHint => 16,
            Label::Today => 17,
            Label::Tomorrow => 18,
            Label::NoTime => 19,
            Label::Continued => 20,
        }
    }

    #[test]
    fn labels_cover_every_variant_with_distinct_texts() {
        let ordinals: BTreeSet<usize> = Label::ALL.iter().map(|l| ordinal(*l)).collect();
        assert_eq!(ordinals, (0..Label::ALL.len()).collect());
        for lang in LANGS {
            let texts: HashSet<&str> = Label::ALL.iter().map(|l| label(*l, lang)).collect();
            assert_eq!(texts.len(), Label::ALL.len(), "{lang:?}");
            for l in Label::ALL {
                assert!(!label(l, lang).is_empty());
                assert_drawable(label(l, lang));
            }
        }
        for l in Label::ALL {
            if l != Label::NoTime {
                assert_hebrew(label(l, Lang::En), label(l, Lang::He));
            }
        }
    }
}
