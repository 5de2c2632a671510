// An operator sends commands to many screens from the dashboard's jobs page (in Hebrew) and
// follows them live: a brightness change to every screen completes; a reboot the screens
// cannot do lists each screen's reason; a bad percentage is refused with its field marked; a
// slow job is paused and cancelled (Chromium, playwright-core).
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node jobs.mjs BASE_URL SCREENSHOT_DIR
// Prints one JSON line: {brightness, failures, invalid, paused, cancelled} as the page showed them.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "he-IL" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/#/jobs`);
  await signIn(page);
  const form = page.locator('[data-testid="job-form"]');
  await form.waitFor();
  const newest = page.locator('[data-testid="job"]').first();
  const count = () => page.locator('[data-testid="job"]').count();
  // Sends the form and waits for the new job's card.
  const send = async () => {
    const before = await count();
    await form.locator('[data-testid="job-send"]').click();
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="job"]').length > n, before);
  };

  // Brightness 40 % to every screen: the card goes to completed by live events.
  await form.locator('[data-testid="job-command"]').selectOption("brightness");
  await form.locator('[data-testid="job-percent"]').fill("40");
  await send();
  await page.locator('[data-testid="job"][data-state="completed"]').first().waitFor({ timeout: 30_000 });
  const brightness = {
    progress: await newest.locator('[data-testid="job-progress"]').getAttribute("aria-label"),
    counts: await newest.locator('[data-testid="job-counts"]').innerText(),
  };

  // A reboot to two chosen screens, which fail it: the failures and their reasons.
  await form.locator('[data-testid="job-command"]').selectOption("reboot");
  await form.locator('[data-testid="job-target"]').selectOption("devices");
  await form.locator('[data-testid="job-target-text"]').fill("jobs00000, jobs00001");
  await send();
  await newest.locator('[data-testid="job-failures-toggle"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="job"]')?.dataset.state === "completed");
  await newest.locator('[data-testid="job-failures-toggle"]').click();
  const failureList = newest.locator('[data-testid="job-failures"] li');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="job-failures"] li').length === 2);
  const failures = await failureList.allInnerTexts();

  // A bad percentage: refused, the field marked.
  await form.locator('[data-testid="job-command"]').selectOption("volume");
  await form.locator('[data-testid="job-percent"]').fill("150");
  await form.locator('[data-testid="job-send"]').click();
  await page.locator('[data-testid="job-errors"]').waitFor();
  const invalid = {
    text: await page.locator('[data-testid="job-errors"]').innerText(),
    marked: await form.locator('[data-testid="job-percent"]').getAttribute("aria-invalid"),
  };

  // A slow job (one screen a minute) to all: pause, then cancel.
  await form.locator('[data-testid="job-command"]').selectOption("ping");
  await form.locator('[data-testid="job-target"]').selectOption("all");
  await form.locator('[data-testid="job-rate-per-minute"]').fill("1");
  await send();
  await newest.locator('[data-testid="job-pause"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="job"]')?.dataset.state === "paused");
  const paused = await newest.locator('[data-testid="job-state"]').innerText();
  await newest.locator('[data-testid="job-cancel"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="job"]')?.dataset.state === "cancelled");
  const cancelled = {
    state: await newest.locator('[data-testid="job-state"]').innerText(),
    actions: await newest.locator('[data-testid="job-pause"], [data-testid="job-resume"], [data-testid="job-cancel"]').count(),
  };
  await page.screenshot({ path: `${shots}/jobs.png`, fullPage: true });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ brightness, failures, invalid, paused, cancelled }));
} finally {
  await browser.close();
}
