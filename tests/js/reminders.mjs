// A gabbai records a family's wish for yahrzeit reminders in Hebrew (Chromium,
// playwright-core): saved without consent, the form is refused with the consent field marked;
// with the date and manner of consent it is saved and listed with the plaque it keeps.
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node reminders.mjs BASE_URL SCREENSHOT_DIR
// Prints one JSON line: {errors, marked, listed} as the page showed them.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "he-IL" });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${base}/#/reminders`);
  await signIn(page);
  const form = page.locator('[data-testid="congregant-form"]');
  await form.waitFor();
  const plaque = form.locator('[data-testid="congregant-plaque"]').first();
  await plaque.waitFor();

  await form.locator('[data-testid="congregant-name"]').fill("רבקה כהן");
  await form.locator('[data-testid="congregant-to"]').fill("rivka@example.org");
  await plaque.check();
  await form.locator('[data-testid="congregant-save"]').click();
  await page.locator('[data-testid="congregant-errors"]').waitFor();
  const errors = await page.locator('[data-testid="congregant-errors"]').innerText();
  const marked = await page.locator('[data-testid="congregant-consentOn"]').getAttribute("aria-invalid");

  await page.locator('[data-testid="congregant-consentOn"]').fill("2026-12-01");
  await page.locator('[data-testid="congregant-consentHow"]').fill("טופס חתום במשרד");
  await page.locator('[data-testid="congregant-save"]').click();
  const item = page.locator('[data-testid="congregant"]').first();
  await item.waitFor();
  const listed = await page.locator('[data-testid="congregant"]').allInnerTexts();
  await page.screenshot({ path: `${shots}/reminders.png`, fullPage: true });
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
  console.log(JSON.stringify({ errors, marked, listed }));
} finally {
  await browser.close();
}
