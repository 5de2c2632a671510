// A tenant admin sets up notifications in Hebrew (Chromium, playwright-core): a channel with a
// bad address is refused with its field marked; corrected, it is saved; its test message goes
// out (the test's SMTP server receives it) and the log shows it sent. On the alerts page the
// admin silences the open alert the test made.
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node notify.mjs BASE_URL SCREENSHOT_DIR
// Prints one JSON line: {errors, marked, channels, logged, silences} as the page showed them.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "he-IL" });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${base}/#/notifications`);
  await signIn(page);
  const form = page.locator('[data-testid="channel-form"]');
  await form.waitFor();
  await page.locator('[data-testid="channels-none"]').waitFor();

  await form.locator('[data-testid="channel-name"]').fill("הגבאי");
  await form.locator('[data-testid="channel-where"]').fill("לא-כתובת");
  await form.locator('[data-testid="channel-save"]').click();
  await page.locator('[data-testid="channel-errors"]').waitFor();
  const errors = await page.locator('[data-testid="channel-errors"]').innerText();
  const marked = await page.locator('[data-testid="channel-where"]').getAttribute("aria-invalid");

  await page.locator('[data-testid="channel-where"]').fill("gabbai@example.org");
  await page.locator('[data-testid="channel-save"]').click();
  const channel = page.locator('[data-testid="channel"]').first();
  await channel.waitFor();
  const channels = await page.locator('[data-testid="channel"]').allInnerTexts();

  // A test message: the log shows it sent (refreshed until it is).
  await channel.locator('[data-testid="channel-test"]').click();
  const sent = page.locator('[data-testid="message"][data-state="sent"]').first();
  for (let i = 0; i < 60 && !(await sent.count()); i++) {
    await page.waitForTimeout(500);
    await page.locator('[data-testid="notify-refresh"]').click();
  }
  await sent.waitFor({ timeout: 5_000 });
  const logged = await sent.innerText();
  await page.screenshot({ path: `${shots}/notifications.png`, fullPage: true });

  // The open alert, silenced for a day from its card.
  await page.goto(`${base}/#/alerts`);
  const card = page.locator('[data-testid="alert"]').first();
  await card.waitFor({ timeout: 60_000 });
  await card.locator('[data-testid="alert-silence"]').click();
  await page.locator('[data-testid="silence"]').first().waitFor();
  const silences = await page.locator('[data-testid="silence"]').allInnerTexts();
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
  console.log(JSON.stringify({ errors, marked, channels, logged, silences }));
} finally {
  await browser.close();
}
