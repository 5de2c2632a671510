//! Which evenings have candle lighting or havdalah, and when.
//!
//! Follows the customary practice (and hebcal's calendar): candles before sunset on Friday and
//! on the eve of a yom tov; candles after nightfall on the first day of a two-day yom tov and on
//! a Shabbat followed by yom tov (one may not light before Shabbat or yom tov ends); havdalah
//! when Shabbat or yom tov ends into a weekday. Chanukah candles are not Shabbat candles.

use serde::Serialize;

use crate::holidays::{Flags, Holiday};

/// What happens at the end of a civil day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EveningEvent {
    /// Candles lit before sunset (Friday, erev yom tov).
    CandlesBeforeSunset,
    /// Candles lit after nightfall (second night of yom tov, Shabbat into yom tov).
    CandlesAfterNightfall,
    /// Shabbat or yom tov ends: havdalah.
    Havdalah,
}

/// The evening event of a day with weekday `dow` (0 = Sunday … 6 = Shabbat) and `holidays`
/// (already filtered for Israel / diaspora).
pub fn evening_event(dow: u8, holidays: &[Holiday]) -> Option<EveningEvent> {
    let (friday, saturday) = (dow == 5, dow == 6);
    let mut event = None;
    let mut decided = false;
    for h in holidays {
        let f = h.flags;
        if f.contains(Flags::CHANUKAH) {
            event = None;
            decided = false;
            continue;
        }
        if !f.intersects(Flags::LIGHT_CANDLES | Flags::LIGHT_CANDLES_TZEIT | Flags::YOM_TOV_ENDS) {
            continue;
        }
        decided = true;
        event = Some(if friday {
            EveningEvent::CandlesBeforeSunset
        } else if f.contains(Flags::LIGHT_CANDLES_TZEIT) {
            EveningEvent::CandlesAfterNightfall
        } else if f.contains(Flags::YOM_TOV_ENDS) {
            EveningEvent::Havdalah
        } else if saturday {
            EveningEvent::CandlesAfterNightfall
        } else {
            EveningEvent::CandlesBeforeSunset
        });
    }
    if !decided {
        if friday {
            event = Some(EveningEvent::CandlesBeforeSunset);
        } else if saturday {
            event = Some(EveningEvent::Havdalah);
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, flags: Flags) -> Holiday {
        Holiday {
            abs: 0,
            name: name.to_owned(),
            flags,
        }
    }

    #[test]
    fn ordinary_week() {
        assert_eq!(evening_event(5, &[]), Some(EveningEvent::CandlesBeforeSunset));
        assert_eq!(evening_event(6, &[]), Some(EveningEvent::Havdalah));
        assert_eq!(evening_event(3, &[]), None);
    }

    #[test]
    fn yom_tov() {
        let erev = h("Erev Pesach", Flags::LIGHT_CANDLES);
        assert_eq!(
            evening_event(6, std::slice::from_ref(&erev)),
            Some(EveningEvent::CandlesAfterNightfall)
        );
        let first = h("Pesach I", Flags::CHAG | Flags::LIGHT_CANDLES_TZEIT);
        assert_eq!(
            evening_event(2, std::slice::from_ref(&first)),
            Some(EveningEvent::CandlesAfterNightfall)
        );
        assert_eq!(evening_event(5, &[first]), Some(EveningEvent::CandlesBeforeSunset));
        let last = h("Pesach VIII", Flags::CHAG | Flags::YOM_TOV_ENDS);
        assert_eq!(evening_event(0, &[last]), Some(EveningEvent::Havdalah));
    }
}
