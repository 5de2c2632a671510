// An operator works on the screens page (in Hebrew): finds a screen by name, picks two screens,
// tags and groups them, saves the tag filter as a query and applies it again, sends the
// selection a command as one job, then opens one screen and reads its history: metrics charts
// drawn from what the screen reported, and the commands it was sent. Last, on the jobs page, a
// display power schedule goes to the saved query (Chromium, playwright-core).
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node fleet.mjs BASE_URL SCREENSHOT_DIR PREFIX
// Prints one JSON line with what the page showed.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots, prefix] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "he-IL" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/#/`);
  await signIn(page);
  const rows = page.locator("table.devices tbody tr");
  // A wait that says what it waited for when it times out.
  const until = (fn) =>
    page.waitForFunction(fn).catch((e) => {
      throw new Error(`waiting for ${fn}: ${e.message}`);
    });
  await until(() => document.querySelectorAll("table.devices tbody tr").length === 3);

  // Search keeps its focus while the list narrows.
  const search = page.locator('[data-testid="filter-text"]');
  await search.click();
  await page.keyboard.type(`${prefix}00001`);
  await until(() => document.querySelectorAll("table.devices tbody tr").length === 1);
  const searched = {
    rows: await rows.count(),
    focused: await page.evaluate(() => document.activeElement?.getAttribute("data-testid")),
    summary: await page.locator('[data-testid="filter-summary"]').innerText(),
  };
  await search.fill("");
  await until(() => document.querySelectorAll("table.devices tbody tr").length === 3);

  // Two screens picked, tagged and grouped.
  for (const id of [`${prefix}00000`, `${prefix}00001`]) {
    await page.locator(`tr[data-device-id="${id}"] [data-testid="select-device"]`).check();
  }
  const selected = await page.locator('[data-testid="selection-count"]').innerText();
  await page.locator('[data-testid="bulk-tag"]').fill("lobby");
  await page.locator('[data-testid="bulk-add-tag"]').click();
  await page.locator('[data-testid="bulk-outcome"].ok').waitFor();
  const tagged = await page.locator('[data-testid="bulk-outcome"]').innerText();
  await page.locator('[data-testid="bulk-group"]').fill("north");
  await page.locator('[data-testid="bulk-set-group"]').click();
  await until(() => document.querySelector('[data-testid="bulk-outcome"]')?.classList.contains("ok") && document.querySelectorAll("td.tags .group").length === 2);
  await page.locator('[data-testid="filter-tag"]').selectOption("lobby");
  await until(() => document.querySelectorAll("table.devices tbody tr").length === 2);
  const byTag = await rows.count();

  // The filter saved as a query (a name typed while screens report live), then applied again.
  await page.locator('[data-testid="saved-name"]').click();
  await page.keyboard.type("לובי", { delay: 150 });
  await page.locator('[data-testid="saved-save"]').click();
  await until(() => [...document.querySelectorAll('[data-testid="saved-query"] option')].some((o) => o.textContent === "לובי"));
  await page.locator('[data-testid="filter-tag"]').selectOption("");
  await until(() => document.querySelectorAll("table.devices tbody tr").length === 3);
  await page.locator('[data-testid="saved-query"]').selectOption({ label: "לובי" });
  await until(() => document.querySelectorAll("table.devices tbody tr").length === 2);
  const bySaved = { rows: await rows.count(), tag: await page.locator('[data-testid="filter-tag"]').inputValue() };
  await page.locator('[data-testid="filter-tag"]').selectOption("");

  // One job for the selection.
  await page.locator('[data-testid="bulk-command"]').selectOption("brightness");
  await page.locator('[data-testid="bulk-percent"]').fill("30");
  await page.locator('[data-testid="bulk-send"]').click();
  await page.locator('[data-testid="bulk-outcome"].ok a[href="#/jobs"]').waitFor();
  const sent = await page.locator('[data-testid="bulk-outcome"]').innerText();

  // The first screen's history: charts with points, and the command with its outcome.
  await page.locator(`tr[data-device-id="${prefix}00000"] [data-testid="open-board"]`).click();
  const history = page.locator('[data-testid="device-history"]');
  await history.waitFor();
  const deadline = Date.now() + 30_000;
  const range = history.locator('[data-testid="history-range"]');
  // Reload (by choosing the period again) until the command's outcome and a sample are in.
  for (;;) {
    const done = await history.locator('[data-testid="command-history"] tr[data-state="succeeded"]').count();
    const points = Number(await history.locator('[data-testid="chart-cpu_percent"]').getAttribute("data-points"));
    if (done > 0 && points > 0) break;
    if (Date.now() > deadline) throw new Error(`history incomplete: ${done} commands done, ${points} points`);
    await page.waitForTimeout(500);
    await range.selectOption("1");
    await range.selectOption("0");
  }
  // Charts are drawn for the metrics the screen has (a machine without sensors has no temperature).
  const charts = await history.locator("figure.chart:has(canvas)").evaluateAll((figs) => figs.map((f) => f.dataset.testid));
  const command = await history.locator('[data-testid="command-history"] tbody tr').first().innerText();
  const kept = await history.locator('[data-testid="telemetry-summary"]').innerText();
  await page.screenshot({ path: `${shots}/fleet.png`, fullPage: true });

  // The jobs page: a power schedule (off 23:00, on half an hour before the first prayer) for
  // the screens of the saved query.
  await page.goto(`${base}/#/jobs`);
  const form = page.locator('[data-testid="job-form"]');
  await form.waitFor();
  await form.locator('[data-testid="job-command"]').selectOption("power_schedule");
  await form.locator('[data-testid="job-schedule-enabled"]').check();
  await form.locator('[data-testid="power-off"] input.fixed').fill("23:00");
  await form.locator('select[name="power_on_kind"]').selectOption("first_prayer");
  await form.locator('[data-testid="power-on"] input.minutes').fill("-30");
  await form.locator('[data-testid="job-target"]').selectOption("query");
  await form.locator('[data-testid="job-target-query"]').selectOption({ label: "לובי" });
  await form.locator('[data-testid="job-send"]').click();
  const scheduled = page.locator('[data-testid="job"]').filter({ hasText: "לוח זמנים" }).first();
  await scheduled.locator('[data-testid="job-state"]').waitFor();
  const schedule = await scheduled.locator("header strong").innerText();
  await page.screenshot({ path: `${shots}/jobs-schedule.png`, fullPage: true });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ searched, selected, tagged, byTag, bySaved, sent, charts, command, kept, schedule }));
} finally {
  await browser.close();
}
