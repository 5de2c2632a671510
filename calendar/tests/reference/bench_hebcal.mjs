// Benchmark counterpart of `cargo run --release -p luach-calendar --example bench_year`:
// the same 365 days computed with @hebcal/core (Hebrew date, holidays, parsha, daf yomi,
// all zmanim, candle lighting) for the ratio. Not a test. Run from the repository root.
import {HDate, HebrewCalendar, Location, Sedra, Zmanim} from '@hebcal/core';
import {DafYomi} from '@hebcal/learning';

const places = [
  ['Jerusalem', new Location(31.778, 35.2354, true, 'Asia/Jerusalem', 'Bench IL', 'IL', undefined, 754), true, 40],
  ['New York', new Location(40.7128, -74.006, false, 'America/New_York', 'Bench US', 'US', undefined, 10), false, 18],
];

function day(loc, il, candles, date) {
  const hd = new HDate(date);
  const out = {
    hd: hd.toString(),
    holidays: (HebrewCalendar.getHolidaysOnDate(hd, il) || []).map((e) => e.getDesc()),
    parsha: new Sedra(hd.onOrAfter(6).getFullYear(), il).lookup(hd.onOrAfter(6)).parsha,
    daf: new DafYomi(date).render('en'),
  };
  const z = new Zmanim(loc, date, false);
  out.z = [z.sunrise(), z.sunset(), z.seaLevelSunrise(), z.seaLevelSunset(), z.alotHaShachar(), z.alotHaShachar72(),
    z.misheyakir(), z.sofZmanShma(), z.sofZmanShmaMGA(), z.sofZmanTfilla(), z.sofZmanTfillaMGA(), z.chatzot(),
    z.minchaGedola(), z.minchaKetana(), z.plagHaMincha(), z.tzeit(8.5), z.tzeit72()];
  out.candles = HebrewCalendar.calendar({start: date, end: date, location: loc, candlelighting: true, il,
    candleLightingMins: candles});
  return JSON.stringify(out).length;
}

for (const [name, loc, il, candles] of places) {
  const run = () => {
    let n = 0;
    for (let i = 0; i < 365; i++) n += day(loc, il, candles, new Date(2025, 0, 1 + i));
    return n;
  };
  run();
  const runs = 5;
  const t0 = performance.now();
  for (let r = 0; r < runs; r++) run();
  const ms = (performance.now() - t0) / runs;
  console.log(`${name.padEnd(10)} hebcal screen-year (365 days): ${ms.toFixed(2)} ms   one day: ${(ms * 1000 / 365).toFixed(1)} µs`);
}
