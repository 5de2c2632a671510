// A gabbai edits the programme (aliyot, a shiur, a countdown) and reads the holiday-times page
// in the dashboard (Chromium, playwright-core).
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node programme.mjs BASE_URL SHOTS FROM DAYS READING_DATE
// The synagogue `main` must exist. Prints one JSON line with what the pages showed:
// {aliyot, shiurim, timers, errors, holidays, hebrew}.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots, from, days, readingDate] = process.argv.slice(2);
const browser = await launchChromium();

/** Submits `form`, waits for the error list `testid`, and returns its text. */
async function refused(page, form, testid) {
  await form.locator('button[type="submit"]').click();
  return (await page.locator(`[data-testid="${testid}"]`).innerText()).trim();
}

/** Submits `form` and waits until the section lists a document and shows no errors. */
async function saved(page, form, section, testid) {
  await form.locator('button[type="submit"]').click();
  await page.locator(`[data-testid="${section}"] li[data-id]`).first().waitFor();
  await page.locator(`[data-testid="${testid}"]`).waitFor({ state: "detached" });
}

try {
  const page = await browser.newPage({ locale: "en-US" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/#/programme`);
  await signIn(page);
  const shownErrors = {};

  // Aliyot: the same honour twice is refused with the row's path, and the row is marked.
  const aliyot = page.locator('[data-testid="aliyot-form"]');
  await aliyot.locator('input[name="date"]').fill(readingDate);
  await aliyot.locator('input[name="note"]').fill("Vayishlach");
  const rows = aliyot.locator(".honour-row");
  await rows.nth(0).locator('input[name="honour_name"]').fill("ר׳ אהרן כהן");
  await aliyot.locator('[data-testid="add-honour"]').click();
  if ((await rows.nth(1).locator("select").inputValue()) !== "levi") throw new Error("the second row does not offer levi");
  await rows.nth(1).locator("select").selectOption("kohen");
  await rows.nth(1).locator('input[name="honour_name"]').fill("ר׳ משה לוי");
  shownErrors.aliyot = await refused(page, aliyot, "aliyot-errors");
  if (!shownErrors.aliyot.includes("honours[1].honour")) throw new Error(`no field path shown: ${shownErrors.aliyot}`);
  await aliyot.locator('select[data-path="honours[1].honour"][aria-invalid="true"]').waitFor();
  // What was typed is still there; fix the row and add a third honour.
  if ((await rows.nth(1).locator('input[name="honour_name"]').inputValue()) !== "ר׳ משה לוי") throw new Error("typed name lost");
  await rows.nth(1).locator("select").selectOption("levi");
  await aliyot.locator('[data-testid="add-honour"]').click();
  await rows.nth(2).locator('input[name="honour_name"]').fill("ר׳ יעקב");
  await saved(page, aliyot, "aliyot", "aliyot-errors");

  // Edit it: the third name changes.
  await page.click('[data-testid="edit-aliyot"]');
  await page.locator('[data-testid="aliyot-form"][data-editing]').waitFor();
  await rows.nth(2).locator('input[name="honour_name"]').fill("ר׳ יעקב ישראלי");
  await aliyot.locator('button[type="submit"]').click();
  await page.locator('[data-testid="aliyot"] li[data-id] .name', { hasText: "ר׳ יעקב ישראלי" }).waitFor();
  await page.locator('[data-testid="aliyot-form"]:not([data-editing])').waitFor();

  // Shiur: no days is refused on schedule.days; then Daf Yomi an hour before sunset.
  const shiur = page.locator('[data-testid="shiur-form"]');
  await shiur.locator('input[name="title"]').fill("Daf Yomi");
  await shiur.locator('input[name="teacher"]').fill("הרב כהן");
  await shiur.locator('input[name="location"]').fill("Beit midrash");
  await shiur.locator('select[name="time_kind"]').selectOption("zman");
  await shiur.locator('select[name="zman"]').selectOption("sunset");
  await shiur.locator('input[name="offset"]').fill("-60");
  await shiur.locator('select[name="round_mode"]').selectOption("down");
  await shiur.locator('select[name="round_minutes"]').selectOption("5");
  await shiur.locator('input[name="days"][value="weekday"]').uncheck();
  shownErrors.shiur = await refused(page, shiur, "shiur-errors");
  if (!shownErrors.shiur.includes("schedule.days")) throw new Error(`no field path shown: ${shownErrors.shiur}`);
  await shiur.locator('input[name="days"][value="weekday"]').check();
  await saved(page, shiur, "shiurim", "shiur-errors");

  // Timer: shown 0 minutes before is refused; 90 minutes before candle lighting is kept.
  const timer = page.locator('[data-testid="timer-form"]');
  await timer.locator('input[name="label_he"]').fill("הדלקת נרות");
  await timer.locator('input[name="label_en"]').fill("Candle lighting");
  await timer.locator('select[name="target_kind"]').selectOption("zman");
  await timer.locator('select[name="target_zman"]').selectOption("candle_lighting");
  await timer.locator('input[name="show_before_minutes"]').fill("0");
  shownErrors.timer = await refused(page, timer, "timer-errors");
  if (!shownErrors.timer.includes("show_before_minutes")) throw new Error(`no field path shown: ${shownErrors.timer}`);
  await timer.locator('input[name="show_before_minutes"]').fill("90");
  await saved(page, timer, "timers", "timer-errors");
  await page.screenshot({ path: `${shots}/programme-en.png`, fullPage: true });

  const shown = {
    aliyot: await page.locator('[data-testid="aliyot"] li[data-id]').evaluateAll((items) =>
      items.map((li) => ({
        id: li.dataset.id,
        date: li.querySelector(".date")?.textContent,
        honours: [...li.querySelectorAll("[data-honour]")].map((h) => ({ honour: h.dataset.honour, name: h.querySelector(".name")?.textContent })),
      })),
    ),
    shiurim: await page.locator('[data-testid="shiurim"] li[data-id]').evaluateAll((items) =>
      items.map((li) => ({ id: li.dataset.id, title: li.querySelector(".title")?.textContent, time: li.querySelector(".time")?.textContent })),
    ),
    timers: await page.locator('[data-testid="timers"] li[data-id]').evaluateAll((items) =>
      items.map((li) => ({
        id: li.dataset.id,
        label: li.querySelector(".label")?.textContent,
        target: li.querySelector(".target")?.textContent,
        show_before_minutes: Number(li.querySelector(".before")?.dataset.minutes),
      })),
    ),
    errors: shownErrors,
  };

  // Holiday times for the window asked for, with Shabbatot.
  await page.click('[data-testid="nav-holidays"]');
  await page.fill('[data-testid="holiday-from"]', from);
  await page.locator('[data-testid="holiday-from"]').dispatchEvent("change");
  await page.fill('[data-testid="holiday-days"]', days);
  await page.locator('[data-testid="holiday-days"]').dispatchEvent("change");
  await page.check('[data-testid="holiday-shabbat"]');
  // Wait for the answer to exactly this query, not the one of today shown before.
  const table = page.locator(`[data-testid="holiday-times"][data-from="${from}"][data-days="${days}"][data-shabbat="true"]`);
  await table.waitFor();
  shown.holidays = await table.locator("tr[data-date]").evaluateAll((rows) =>
    rows.map((tr) => ({
      date: tr.dataset.date,
      candle_lighting: tr.querySelector('[data-kind="candle_lighting"]')?.textContent,
      havdalah: tr.querySelector('[data-kind="havdalah"]')?.textContent,
    })),
  );
  const friday = shown.holidays.find((d) => new Date(`${d.date}T00:00:00Z`).getUTCDay() === 5);
  if (!friday || friday.candle_lighting === "—") throw new Error(`no candle lighting on a Friday: ${JSON.stringify(shown.holidays)}`);
  await page.screenshot({ path: `${shots}/holidays-en.png`, fullPage: true });

  // Hebrew: right-to-left, Hebrew labels and month names.
  await page.click('[data-testid="lang-switch"]');
  shown.hebrew = {
    dir: await page.getAttribute("html", "dir"),
    month: (await table.locator(`tr[data-date="${friday.date}"] [data-kind="hebrew_date"]`).innerText()).trim(),
  };
  await page.screenshot({ path: `${shots}/holidays-he.png`, fullPage: true });
  await page.click('[data-testid="nav-programme"]');
  shown.hebrew.kohen = (await page.locator('[data-testid="aliyot"] [data-honour="kohen"] .honour').innerText()).trim();
  shown.hebrew.heading = (await page.locator("main:not([hidden]) h2").innerText()).trim();
  await page.screenshot({ path: `${shots}/programme-he.png`, fullPage: true });
  if (shown.hebrew.dir !== "rtl") throw new Error("Hebrew page is not right-to-left");
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify(shown));
} finally {
  await browser.close();
}
