// Independent reference: @hebcal/core's yahrzeit dates for deaths (civil, before nightfall)
// that fall in [from, from + days). usage: node hebcal_yahrzeits.mjs FROM DAYS DATE...
// Prints JSON [{death, date}] sorted by date.
import { HDate, HebrewCalendar } from "@hebcal/core";

const [from, days, ...deaths] = process.argv.slice(2);
const start = new Date(`${from}T12:00:00Z`);
const end = new Date(start.getTime() + Number(days) * 86400_000);
const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
const out = [];
for (const death of deaths) {
  const [y, m, d] = death.split("-").map(Number);
  const date = new Date(y, m - 1, d);
  for (let hy = new HDate(start).getFullYear(); hy <= new HDate(end).getFullYear(); hy++) {
    const r = HebrewCalendar.getYahrzeit(hy, date);
    if (!r) continue;
    const g = iso(r.greg());
    if (g >= from && g < iso(end)) out.push({ death, date: g });
  }
}
out.sort((a, b) => a.date.localeCompare(b.date) || a.death.localeCompare(b.death));
process.stdout.write(JSON.stringify(out));
