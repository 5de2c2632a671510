// A tenant admin adds a waiting screen by its claim code in the dashboard (Chromium,
// playwright-core). usage: LUACH_EMAIL=… LUACH_PASSWORD=… node claim.mjs BASE_URL CLAIM_CODE DEVICE_ID
// Exits 0 once a wrong code was refused with a message and the right one added the screen.
import { launchChromium, signIn } from "./browser.mjs";

const [base, code, device] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "en-US" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base);
  await signIn(page);
  const form = page.locator('[data-testid="claim-form"]');
  await form.locator('input[name="claim_code"]').fill("2345-6789");
  await form.locator('button[type="submit"]').click();
  const refused = await page.locator('[data-testid="claim-errors"]').innerText();
  if (!refused.includes("claim_code")) throw new Error(`wrong code not refused: ${refused}`);

  // Codes are accepted as typed: lower case, without the dash.
  await form.locator('input[name="claim_code"]').fill(code.replace("-", "").toLowerCase());
  await form.locator('input[name="name"]').fill("Lobby screen");
  await form.locator('button[type="submit"]').click();
  await page.locator('[data-testid="claimed"]').waitFor();
  await page.locator(`tr[data-device-id="${device}"]`).waitFor();
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("claimed");
} finally {
  await browser.close();
}
