// An operator opens a screen's board in the dashboard, changes its theme and language, gives
// it a display power schedule, and sees the screen's picture (Chromium, playwright-core).
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node board.mjs BASE_URL DEVICE_ID SCREENSHOT_DIR
// Exits 0 once the settings are saved and the picture is drawn in them.
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
  const settings = page.locator('[data-testid="board-settings"]');
  await settings.waitFor();
  await settings.locator('select[name="theme"]').selectOption("high_contrast");
  await settings.locator('select[name="language"]').selectOption("both");
  // Display off at 23:00 (the form's default) and on half an hour before the first prayer.
  await settings.locator('[data-testid="power-enabled"]').check();
  await settings.locator('select[name="power_on_kind"]').selectOption("first_prayer");
  const minutes = settings.locator('input[name="power_on_minutes"]');
  if (!(await minutes.isVisible())) throw new Error("the minutes of the first prayer are not shown");
  if (await settings.locator('input[name="power_on_fixed"]').isVisible()) throw new Error("a fixed time is shown for the first prayer");
  await minutes.fill("-30");
  await page.click('[data-testid="board-save"]');
  await page.locator('[data-testid="board-saved"], [data-testid="board-errors"]').first().waitFor();
  const refused = page.locator('[data-testid="board-errors"]');
  if (await refused.count()) throw new Error(`saving was refused: ${await refused.innerText()}`);
  // The picture that follows is drawn in the saved settings: the high-contrast background is black.
  await page.locator('[data-testid="device-board"] [data-testid="board-image"], [data-testid="device-board"] [data-testid="board-error"]').first().waitFor();
  const failed = page.locator('[data-testid="device-board"] [data-testid="board-error"]');
  if (await failed.count()) throw new Error(`the picture was refused: ${await failed.innerText()}`);
  await page.waitForFunction(() => {
    const img = document.querySelector('[data-testid="device-board"] [data-testid="board-image"]');
    return img && img.complete && img.naturalWidth > 0 && !img.classList.contains("loading");
  });
  const corner = await page.locator('[data-testid="device-board"] [data-testid="board-image"]').evaluate((img) => {
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    return [...ctx.getImageData(4, 4, 1, 1).data.slice(0, 3)];
  });
  if (corner.some((c) => c > 10)) throw new Error(`not the high-contrast theme: ${corner}`);
  await page.screenshot({ path: `${shots}/device-board.png`, fullPage: true });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
} finally {
  await browser.close();
}
