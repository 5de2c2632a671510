// Independent reference values from @hebcal/core (+ @hebcal/noaa, @hebcal/learning).
//
// Reads a JSON request on stdin and prints one JSON document on stdout:
//   request  = { zmanim: [{place, date}], places: {name: {lat, lon, elevation, tz, il}},
//                days: {from, to, place}, years: {from, to}, yahrzeit: {deaths: [date], offsets: [n]} }
//   response = { zmanim: [...], days: [...], years: [...], yahrzeit: [...] }
// Instants are epoch milliseconds (unrounded where hebcal offers it), null where hebcal has none.
// Used only by calendar/tests/reference_compare.rs; run from the repository root so that
// node_modules resolves.
import {HDate, HebrewCalendar, Location, Sedra, Zmanim, flags} from '@hebcal/core';
import {DafYomi} from '@hebcal/learning';
import {NOAACalculator} from '@hebcal/noaa';

// Israeli national days Luach does not show (see calendar/src/holidays.rs).
const SKIPPED_MODERN = new Set([
  'Ben-Gurion Day', 'Family Day', 'Hebrew Language Day', 'Herzl Day', 'Jabotinsky Day', 'Sigd',
  'Yitzhak Rabin Memorial Day', 'Yom HaAliyah', 'Yom HaAliyah School Observance',
]);
const SKIPPED_FLAGS = flags.USER_EVENT | flags.DAF_YOMI | flags.OMER_COUNT | flags.PARSHA_HASHAVUA |
  flags.MOLAD | flags.YOM_KIPPUR_KATAN | flags.SHABBAT_MEVARCHIM | flags.BEHAB | flags.HEBREW_DATE;

const input = JSON.parse(await new Promise((resolve) => {
  let s = '';
  process.stdin.on('data', (c) => { s += c; });
  process.stdin.on('end', () => resolve(s));
}));

function ms(x) {
  if (x === null || x === undefined) return null;
  if (x instanceof Date) return isNaN(x.getTime()) ? null : x.getTime();
  if (typeof x.epochMilliseconds === 'number') return x.epochMilliseconds;
  return null;
}
function parseDate(s) {
  const [y, m, d] = s.split('-').map(Number);
  const dt = new Date(Date.UTC(y, m - 1, d));
  dt.setUTCFullYear(y); // years < 100
  return new Date(dt.getUTCFullYear(), dt.getUTCMonth(), dt.getUTCDate());
}
function iso(d) {
  const y = String(d.getFullYear()).padStart(4, '0');
  return `${y}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}
function location(p) {
  // Never named "Jerusalem": hebcal would force 40-minute candle lighting.
  return new Location(p.lat, p.lon, Boolean(p.il), p.tz, 'Reference place', 'XX', undefined, p.elevation || 0);
}
function keepHoliday(ev) {
  return !(ev.getFlags() & SKIPPED_FLAGS) && !SKIPPED_MODERN.has(ev.getDesc());
}
function holidaysOn(hd, il) {
  return (HebrewCalendar.getHolidaysOnDate(hd, il) || []).filter(keepHoliday).map((e) => e.getDesc()).sort();
}
const sedraCache = new Map();
function parshaFor(hd, il) {
  const sat = hd.onOrAfter(6);
  const key = `${sat.getFullYear()}-${il}`;
  if (!sedraCache.has(key)) sedraCache.set(key, new Sedra(sat.getFullYear(), il));
  return sedraCache.get(key).lookup(sat).parsha;
}
// Candle lighting / havdalah of one civil day at a place, as hebcal's calendar decides.
function eveningKind(p, date) {
  const loc = location(p);
  const evs = HebrewCalendar.calendar({
    start: date, end: date, location: loc, candlelighting: true, il: Boolean(p.il),
    candleLightingMins: 18, havdalahDeg: 8.5, noHolidays: false,
  });
  const z = new Zmanim(loc, date, false);
  const sunset = ms(z.seaLevelSunset());
  for (const ev of evs) {
    const desc = ev.getDesc();
    if (desc === 'Havdalah') return 'havdalah';
    if (desc === 'Candle lighting') {
      const t = ms(ev.eventTime);
      return t !== null && sunset !== null && t < sunset ? 'candles_before_sunset' : 'candles_after_nightfall';
    }
  }
  return null;
}

// Astronomical solar transit from @hebcal/noaa's NOAA solar-noon equations (hebcal's own
// chatzot() is the half-day midpoint, compared against chatzot_half_day instead).
function solarTransit(p, date) {
  const utcMidnight = Date.UTC(date.getFullYear(), date.getMonth(), date.getDate());
  const jd = utcMidnight / 86400000 + 2440587.5;
  const t = NOAACalculator.getJulianCenturiesFromJulianDay(jd);
  const minutes = NOAACalculator.getSolarNoonUTC(t, -p.lon);
  return Math.round(utcMidnight + minutes * 60000);
}

function zmanimCase(c) {
  const p = input.places[c.place];
  const loc = location(p);
  const date = parseDate(c.date);
  const out = {};
  for (const useElevation of [false, true]) {
    const z = new Zmanim(loc, date, useElevation);
    const v = {
      sunrise: ms(new Zmanim(loc, date, true).sunrise()),
      sunset: ms(new Zmanim(loc, date, true).sunset()),
      sea_level_sunrise: ms(z.seaLevelSunrise()),
      sea_level_sunset: ms(z.seaLevelSunset()),
      alot_16_1: ms(z.alotHaShachar()),
      alot_72: ms(z.alotHaShachar72zdt()),
      misheyakir_11_5: ms(z.misheyakir()),
      sof_zman_shma_gra: ms(z.sofZmanShma()),
      sof_zman_shma_mga: ms(z.sofZmanShmaMGA()),
      sof_zman_tefila_gra: ms(z.sofZmanTfilla()),
      sof_zman_tefila_mga: ms(z.sofZmanTfillaMGA()),
      chatzot: solarTransit(p, date),
      chatzot_half_day: ms(z.chatzot()),
      mincha_gedola: ms(z.minchaGedola()),
      mincha_ketana: ms(z.minchaKetana()),
      plag_hamincha: ms(z.plagHaMincha()),
      tzeit_8_5: ms(z.tzeit(8.5)),
      tzeit_72: ms(z.tzeit72()),
    };
    // hebcal returns garbage instead of null for derived zmanim when sunrise/sunset is missing
    for (const k of Object.keys(v)) if (typeof v[k] === 'number' && !isFinite(v[k])) v[k] = null;
    const kind = eveningKind(p, date);
    v.candle_lighting = null;
    v.havdalah = null;
    if (kind === 'candles_before_sunset') v.candle_lighting = ms(new Zmanim(loc, date, false).sunsetOffset(-18, false, true));
    if (kind === 'candles_after_nightfall') v.candle_lighting = ms(z.tzeit(8.5));
    if (kind === 'havdalah') v.havdalah = ms(z.tzeit(8.5));
    v.evening = kind;
    out[useElevation ? 'elevation' : 'sea_level'] = v;
  }
  return {place: c.place, date: c.date, ...out};
}

function day(date, p) {
  const hd = new HDate(date);
  const il = Boolean(p.il);
  let daf = null;
  try {
    const d = new DafYomi(date);
    daf = {tractate: d.getName(), page: d.getBlatt()};
  } catch (e) { daf = null; }
  const omer = (() => {
    const y = hd.getFullYear();
    const n = hd.abs() - new HDate(16, 1, y).abs() + 1;
    return n >= 1 && n <= 49 ? n : null;
  })();
  return {
    date: iso(date), il,
    hebrew_date: {year: hd.getFullYear(), month: hd.getMonthName(), day: hd.getDate()},
    holidays: holidaysOn(hd, il),
    parsha: parshaFor(hd, il),
    daf_yomi: daf, omer, evening: eveningKind(p, date),
  };
}

const res = {zmanim: [], days: [], years: [], yahrzeit: []};
for (const c of input.zmanim || []) res.zmanim.push(zmanimCase(c));
if (input.days) {
  for (const placeName of input.days.places) {
    const p = input.places[placeName];
    for (let d = parseDate(input.days.from); iso(d) <= input.days.to; d.setDate(d.getDate() + 1)) {
      res.days.push({place: placeName, ...day(new Date(d), p)});
    }
  }
}
if (input.years) {
  for (let y = input.years.from; y <= input.years.to; y++) {
    for (const il of [false, true]) {
      const evs = HebrewCalendar.calendar({start: new HDate(1, 7, y), end: new HDate(new HDate(1, 7, y + 1).abs() - 1), il})
        .filter(keepHoliday).filter((ev) => ev.observedIn(il));
      const holidays = evs.map((e) => [iso(e.getDate().greg()), e.getDesc()]);
      const sedra = new Sedra(y, il);
      const parsha = [];
      for (let s = new HDate(1, 7, y).onOrAfter(6); s.abs() < new HDate(1, 7, y + 1).abs(); s = s.add(7)) {
        parsha.push([iso(s.greg()), sedra.lookup(s).parsha]);
      }
      res.years.push({year: y, il, holidays, parsha});
    }
  }
}
if (input.yahrzeit) {
  for (const d of input.yahrzeit.deaths) {
    const date = parseDate(d);
    const hy = new HDate(date).getFullYear();
    for (const off of input.yahrzeit.offsets) {
      const r = HebrewCalendar.getYahrzeit(hy + off, date);
      res.yahrzeit.push({death: d, year: hy + off, result: r ? {year: r.getFullYear(), month: r.getMonthName(), day: r.getDate()} : null});
    }
  }
}
process.stdout.write(JSON.stringify(res));
