//! `luach-agent zmanim`: the command line of one day's calendar and zmanim, computed offline by
//! `luach-calendar`.

use luach_calendar::DayRequest;

/// `luach-agent zmanim --lat … --lon … [--elevation M] [--use-elevation] --tz ZONE
/// --date YYYY-MM-DD [--israel] [--candle-minutes N] [--json]`
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ZmanimArgs {
    /// Latitude in degrees, north positive (-90..90).
    #[arg(long, allow_hyphen_values = true)]
    pub lat: f64,
    /// Longitude in degrees, east positive (-180..180).
    #[arg(long, allow_hyphen_values = true)]
    pub lon: f64,
    /// Elevation in metres above sea level.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub elevation: f64,
    /// Use elevation-adjusted sunrise and sunset for all zmanim (default: sea level).
    #[arg(long)]
    pub use_elevation: bool,
    /// IANA time zone, e.g. Asia/Jerusalem.
    #[arg(long)]
    pub tz: String,
    /// Civil date, YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    /// Use the Israeli holiday and parsha schedule.
    #[arg(long)]
    pub israel: bool,
    /// Candle lighting, minutes before sunset (e.g. 18, 20, 40 in Jerusalem).
    #[arg(long, default_value_t = 18)]
    pub candle_minutes: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl From<&ZmanimArgs> for DayRequest {
    fn from(a: &ZmanimArgs) -> Self {
        Self {
            lat: a.lat,
            lon: a.lon,
            elevation: a.elevation,
            use_elevation: a.use_elevation,
            tz: a.tz.clone(),
            date: a.date.clone(),
            israel: a.israel,
            candle_minutes: a.candle_minutes,
            json: a.json,
        }
    }
}

/// Runs the subcommand: the day's output, or the calendar's error.
pub fn run(args: &ZmanimArgs) -> Result<String, luach_calendar::Error> {
    luach_calendar::run_day_request(&DayRequest::from(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ZmanimArgs,
    }

    fn parse(argv: &[&str]) -> Result<ZmanimArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("zmanim").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn negative_longitudes_parse_and_the_day_is_computed() {
        let args = parse(&[
            "--lat",
            "40.7128",
            "--lon",
            "-74.006",
            "--tz",
            "America/New_York",
            "--date",
            "2025-04-11",
            "--json",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.lon, -74.006);
        let out = run(&args).unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(v["hebrew_date"]["month"], "Nisan");
    }

    #[test]
    fn missing_and_bad_arguments_are_refused_by_the_parser_or_named_by_the_calendar() {
        assert!(parse(&["--lat", "31.7"]).is_err());
        assert!(parse(&["--lat", "x", "--lon", "1", "--tz", "UTC", "--date", "2025-01-01"]).is_err());
        let args = parse(&[
            "--lat",
            "31.7",
            "--lon",
            "35.2",
            "--tz",
            "Nowhere/City",
            "--date",
            "2025-01-01",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(run(&args), Err(luach_calendar::Error::UnknownTimeZone(_))));
    }
}
