"""Independent zmanim reference values from `zmanim` (the Python port of KosherJava).

Reads {"places": {name: {lat, lon, elevation, tz}}, "zmanim": [{place, date}]} on stdin and
prints {"zmanim": [{place, date, sea_level: {...}, elevation: {...}}]} with epoch milliseconds
(null where the library has no time).

Known fault worked around: the port subtracts aware datetimes of one zone as wall-clock times,
so intervals across a DST change come out wrong. Each day is therefore computed in a *fixed*
UTC offset (the zone's offset at local noon of that day): same instants, no DST inside the day.
Used only by calendar/tests/reference_compare.rs.
"""

import json
import sys
from datetime import date, datetime, timedelta

from dateutil import tz
from zmanim.util.geo_location import GeoLocation
from zmanim.zmanim_calendar import ZmanimCalendar

GEOMETRIC_ZENITH = 90.0


def ms(t):
    if t is None:
        return None
    return int(round(t.timestamp() * 1000))


def fixed_zone(zone_name, day):
    """The zone's noon offset as an Etc/GMT zone (the port accepts only tz names / tzfiles)."""
    zone = tz.gettz(zone_name)
    if zone is None:
        raise SystemExit(f"unknown zone {zone_name}")
    offset = datetime(day.year, day.month, day.day, 12, tzinfo=zone).utcoffset() or timedelta(0)
    seconds = int(offset.total_seconds())
    if seconds % 3600 != 0:
        return zone_name  # no fixed-offset tz name; keep the real zone
    hours = seconds // 3600
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"


def compute(place, day, use_elevation):
    geo = GeoLocation("reference", place["lat"], place["lon"], fixed_zone(place["tz"], day), place.get("elevation", 0.0))
    cal = ZmanimCalendar(geo_location=geo, date=day, candle_lighting_offset=18)
    cal.use_elevation = use_elevation

    def safe(f):
        try:
            return ms(f())
        except (TypeError, ValueError, ZeroDivisionError):
            return None

    return {
        "sunrise": safe(cal.sunrise),
        "sunset": safe(cal.sunset),
        "sea_level_sunrise": safe(cal.sea_level_sunrise),
        "sea_level_sunset": safe(cal.sea_level_sunset),
        "alot_16_1": safe(cal.alos),
        "alot_72": safe(cal.alos_72),
        "misheyakir_11_5": safe(lambda: cal.sunrise_offset_by_degrees(GEOMETRIC_ZENITH + 11.5)),
        "sof_zman_shma_gra": safe(cal.sof_zman_shma_gra),
        "sof_zman_shma_mga": safe(cal.sof_zman_shma_mga),
        "sof_zman_tefila_gra": safe(cal.sof_zman_tfila_gra),
        "sof_zman_tefila_mga": safe(cal.sof_zman_tfila_mga),
        "chatzot": safe(cal.chatzos),
        "chatzot_half_day": safe(cal.chatzos),
        "mincha_gedola": safe(cal.mincha_gedola),
        "mincha_ketana": safe(cal.mincha_ketana),
        "plag_hamincha": safe(cal.plag_hamincha),
        "tzeit_8_5": safe(cal.tzais),
        "tzeit_72": safe(cal.tzais_72),
        "candle_lighting_if_lit": safe(cal.candle_lighting),
    }


def main():
    request = json.load(sys.stdin)
    places = request["places"]
    out = []
    for case in request.get("zmanim", []):
        place = places[case["place"]]
        day = date.fromisoformat(case["date"])
        out.append(
            {
                "place": case["place"],
                "date": case["date"],
                "sea_level": compute(place, day, False),
                "elevation": compute(place, day, True),
            }
        )
    json.dump({"zmanim": out}, sys.stdout)


if __name__ == "__main__":
    main()
