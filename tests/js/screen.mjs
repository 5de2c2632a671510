// An operator opens a screen in the dashboard (in Hebrew), takes a screenshot and sees it, sets
// the brightness (the screen applies it) and turns the display off (the screen says it cannot,
// and why) (Chromium, playwright-core).
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node screen.mjs BASE_URL DEVICE_ID SCREENSHOT_DIR
// Prints one JSON line: {width, brightness, power} as the page showed them.
import { launchChromium, signIn } from "./browser.mjs";

const [base, device, shots] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "he-IL" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/#/`);
  await signIn(page);
  await page.locator(`tr[data-device-id="${device}"] [data-testid="open-board"]`).click();
  const screen = page.locator('[data-testid="device-screen"]');
  await screen.waitFor();

  await screen.locator('[data-testid="take-screenshot"]').click();
  await screen.locator('[data-testid="screenshot-image"], [data-testid="screenshot-outcome"][data-kind="error"]').first().waitFor({ timeout: 40_000 });
  const failed = screen.locator('[data-testid="screenshot-outcome"][data-kind="error"]');
  if (await failed.count()) throw new Error(`the screenshot failed: ${await failed.innerText()}`);
  await page.waitForFunction(() => {
    const img = document.querySelector('[data-testid="screenshot-image"]');
    return img && img.complete && img.naturalWidth > 0;
  });
  const width = await screen.locator('[data-testid="screenshot-image"]').evaluate((img) => img.naturalWidth);

  // Brightness 30 %: the slider, then the button.
  await screen.locator('[data-testid="brightness-level"]').evaluate((input) => {
    input.value = "30";
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
  await screen.locator('[data-testid="set-brightness"]').click();
  const outcome = screen.locator('[data-testid="control-outcome"]:not([data-kind="busy"])');
  await outcome.waitFor();
  const brightness = { kind: await outcome.getAttribute("data-kind"), text: await outcome.innerText() };

  await screen.locator('[data-testid="display-off"]').click();
  await page.waitForFunction(
    (before) => {
      const line = document.querySelector('[data-testid="control-outcome"]');
      return line && line.dataset.kind !== "busy" && line.textContent !== before;
    },
    brightness.text,
  );
  const power = { kind: await outcome.getAttribute("data-kind"), text: await outcome.innerText() };
  await page.screenshot({ path: `${shots}/device-screen.png`, fullPage: true });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ width, brightness, power }));
} finally {
  await browser.close();
}
