// An operator works the alerts page in Hebrew (Chromium, playwright-core): a rule with a
// mistake is refused with its field marked; a corrected one is saved; when the test then makes
// a hall screen hot, its alert appears live, is acknowledged, and resolves live when the test
// cools the screen.
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node alerts.mjs BASE_URL SCREENSHOT_DIR
// Prints one JSON line: {errors, marked, rules, opened, acknowledged, resolved} as the page showed them.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "he-IL" });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${base}/#/alerts`);
  await signIn(page);
  const form = page.locator('[data-testid="alert-rule-form"]');
  await form.waitFor();
  await page.locator('[data-testid="alerts-none"]').waitFor();

  // A threshold that is not a number: refused, the box marked.
  await form.locator('[data-testid="rule-name"]').fill("מסכי האולם חמים");
  await form.locator('[data-testid="rule-target"]').selectOption("tags");
  await form.locator('[data-testid="rule-targetText"]').fill("hall");
  await form.locator('[data-testid="rule-value"]').fill("חם");
  await form.locator('[data-testid="rule-forMinutes"]').fill("0");
  await form.locator('[data-testid="rule-save"]').click();
  await page.locator('[data-testid="rule-errors"]').waitFor();
  const errors = await page.locator('[data-testid="rule-errors"]').innerText();
  const marked = await form.locator('[data-testid="rule-value"]').getAttribute("aria-invalid");

  // Corrected (what was typed stayed): saved and listed.
  await form.locator('[data-testid="rule-value"]').fill("75");
  await form.locator('[data-testid="rule-clear"]').fill("70");
  await form.locator('[data-testid="rule-severity"]').selectOption("critical");
  await form.locator('[data-testid="rule-save"]').click();
  await page.locator('[data-testid="alert-rule"]').first().waitFor();
  const rules = await page.locator('[data-testid="alert-rule"]').allInnerTexts();

  // The test makes the screen hot now: the alert arrives by itself.
  const card = page.locator('[data-testid="alert"]').first();
  await card.waitFor({ timeout: 60_000 });
  const opened = {
    state: await card.locator('[data-testid="alert-state"]').innerText(),
    severity: await card.getAttribute("data-severity"),
    device: await card.locator('[data-testid="alert-device"]').innerText(),
  };
  await card.locator('[data-testid="alert-acknowledge"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="alert"]')?.dataset.state === "acknowledged");
  const acknowledged = await card.locator('[data-testid="alert-state"]').innerText();
  await page.screenshot({ path: `${shots}/alerts.png`, fullPage: true });

  // The test cools the screen: the alert leaves the list of active ones; shown with the
  // resolved ones, it says so.
  await page.locator('[data-testid="alerts-none"]').waitFor({ timeout: 60_000 });
  await page.locator('[data-testid="alerts-show-resolved"]').check();
  await page.locator('[data-testid="alert"][data-state="resolved"]').waitFor();
  const resolved = await page.locator('[data-testid="alert"] [data-testid="alert-state"]').first().innerText();
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
  console.log(JSON.stringify({ errors, marked, rules, opened, acknowledged, resolved }));
} finally {
  await browser.close();
}
