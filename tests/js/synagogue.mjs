// A gabbai edits the synagogue in the dashboard and sees the preview (Chromium, playwright-core).
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node synagogue.mjs BASE_URL SCREENSHOT_DIR (a gabbai)
// Prints the Mincha time the preview shows for 2026-12-04; exits 0 on success.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "en-US" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/#/synagogue`);
  await signIn(page);
  const form = page.locator('[data-testid="synagogue-form"]');
  await form.waitFor();

  // A bad schedule is refused with the failing path shown.
  await form.locator('input[name="name"]').fill("Beit Knesset HaGadol");
  await form.locator('textarea[name="schedule"]').fill(JSON.stringify({
    rules: [{ name: "Mincha", time: { zman: "sunset", offset_minutes: -15 }, round: { mode: "down", minutes: 7 }, days: ["every_day"] }],
  }));
  await page.click('[data-testid="save"]');
  const shown = await page.locator('[data-testid="errors"]').innerText();
  if (!shown.includes("schedule.rules[0]")) throw new Error(`error path not shown: ${shown}`);

  // Fixed, it saves and the preview shows the computed prayer time.
  await form.locator('textarea[name="schedule"]').fill(JSON.stringify({
    rules: [{ name: "Mincha", time: { zman: "sunset", offset_minutes: -15 }, round: { mode: "down", minutes: 5 }, days: ["every_day"] }],
  }));
  await page.click('[data-testid="save"]');
  await page.locator('[role="status"]').waitFor();
  await page.fill('[data-testid="preview-date"]', "2026-12-04");
  await page.locator('[data-testid="preview-date"]').dispatchEvent("change");
  const mincha = page.locator('tr[data-kind="prayer"][data-name="Mincha"] td');
  // Wait for the table of the chosen day, not the one of today that may still be showing.
  await page.locator('[data-testid="preview"][data-date="2026-12-04"]').waitFor();
  if (!(await page.locator('[data-testid="hebrew-date"]').innerText()).includes("Kislev")) throw new Error("not Kislev");
  const time = (await mincha.innerText()).trim();
  const candles = (await page.locator('tr[data-kind="candle_lighting"] td').innerText()).trim();
  if (candles === "—") throw new Error("no candle lighting on a Friday");
  await page.screenshot({ path: `${shots}/synagogue-en.png`, fullPage: true });

  // Hebrew, right-to-left.
  await page.click('[data-testid="lang-switch"]');
  if ((await page.getAttribute("html", "dir")) !== "rtl") throw new Error("not right-to-left");
  if (!(await page.locator("main:not([hidden]) h2").innerText()).includes("בית הכנסת")) throw new Error("heading not translated");
  await page.screenshot({ path: `${shots}/synagogue-he.png`, fullPage: true });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(time);
} finally {
  await browser.close();
}
