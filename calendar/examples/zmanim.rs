//! Try the `luach-agent zmanim` subcommand without the agent:
//! `cargo run -p luach-calendar --example zmanim -- --lat 31.778 --lon 35.2354 --elevation 754 \
//!  --tz Asia/Jerusalem --date 2025-04-11 --israel --candle-minutes 40 --json`

use std::process::ExitCode;

use clap::Parser;
use luach_calendar::{ZmanimArgs, run_zmanim_cli};

#[derive(Parser)]
#[command(name = "zmanim", about = "Zmanim and calendar of one civil day")]
struct Cli {
    #[command(flatten)]
    args: ZmanimArgs,
}

fn main() -> ExitCode {
    match run_zmanim_cli(&Cli::parse().args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
