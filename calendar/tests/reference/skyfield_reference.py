"""The sky itself as a reference: the sun's transit, rising and setting from JPL's DE421
ephemeris through skyfield (PyPI `skyfield` with `skyfield-data`, which ships the ephemeris and
the time-scale files, so nothing is downloaded).

Reads {"places": {name: {lat, lon, ...}}, "zmanim": [{place, date}]} on stdin and prints
{"sky": [{place, date, transit, sunrise, sunset}]} with epoch milliseconds (null where the sun
does not rise or set that day; `"outside": true` for a date DE421 does not cover, 1900–2052). For each case the local solar day is centred on mean solar noon
(12:00 UTC minus the longitude in hours): the upper transit within three hours of it, the rising
in the twelve hours before and the setting in the twelve hours after, with the sun's centre
0°50' below the geometric horizon (34' of refraction and a 16' radius, NOAA's standard), at sea
level. Used only by calendar/tests/reference_compare.rs.
"""

import json
import sys
import warnings
from datetime import date, datetime, timedelta, timezone

warnings.simplefilter("ignore")  # skyfield-data's own files are used as shipped

from skyfield import almanac  # noqa: E402
from skyfield.api import Loader, wgs84  # noqa: E402
from skyfield_data import get_skyfield_data_path  # noqa: E402

HORIZON = -(34.0 + 16.0) / 60.0


def ms(t):
    """Epoch milliseconds of civil time: UTC from 1972, when leap seconds began; before that
    civil time kept to the earth's rotation (UT1), which skyfield's UTC does not follow (it holds
    TAI - UTC at its 1972 value, 13 s off UT1 in 1950)."""
    if t.utc.year >= 1972:
        return int(round(t.utc_datetime().timestamp() * 1000))
    return int(round((t.ut1 - 2440587.5) * 86400000))


def main():
    request = json.load(sys.stdin)
    load = Loader(get_skyfield_data_path(), expire=False)
    eph = load("de421.bsp")
    ts = load.timescale(builtin=True)
    sun, earth = eph["sun"], eph["earth"]
    out = []
    for case in request["zmanim"]:
        place = request["places"][case["place"]]
        lat, lon = place["lat"], place["lon"]
        topos = wgs84.latlon(lat, lon)
        observer = earth + topos
        day = date.fromisoformat(case["date"])
        if not 1900 <= day.year <= 2052:
            out.append({"place": case["place"], "date": case["date"], "outside": True})
            continue
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc) - timedelta(hours=lon / 15.0)

        def at(hours):
            return ts.from_datetime(noon + timedelta(hours=hours))

        times, kinds = almanac.find_discrete(at(-3), at(3), almanac.meridian_transits(eph, sun, topos))
        transit = next((ms(t) for t, k in zip(times, kinds) if k == 1), None)
        rises, rose = almanac.find_risings(observer, sun, at(-12), at(0), horizon_degrees=HORIZON)
        sets, set_ = almanac.find_settings(observer, sun, at(0), at(12), horizon_degrees=HORIZON)
        sunrise = next((ms(t) for t, ok in zip(rises, rose) if ok), None)
        sunset = next((ms(t) for t, ok in zip(sets, set_) if ok), None)
        out.append({"place": case["place"], "date": case["date"], "transit": transit, "sunrise": sunrise, "sunset": sunset})
    json.dump({"sky": out}, sys.stdout)


if __name__ == "__main__":
    main()
