// Drives the dashboard in Debian's Chromium through playwright-core.
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node dashboard.mjs BASE_URL DEVICE_ID SCREENSHOT_DIR
// Signs in (after one wrong password), checks a reload keeps the session.
// Prints "online" when the device's row shows online (the test then stops the device),
// "offline" when the row turns offline without a reload; exits 0 on success.
import { launchChromium, signIn } from "./browser.mjs";

const [base, device, shots] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "en-US" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(base);
  await signIn(page, { wrongFirst: true });
  const row = page.locator(`tr[data-device-id="${device}"]`);
  await row.waitFor({ timeout: 60_000 });
  // The refresh cookie keeps the session across a reload: no login form this time.
  await page.reload();
  await row.waitFor({ timeout: 60_000 });
  if (await page.locator('[data-testid="login-form"]').isVisible()) throw new Error("reload lost the session");
  await row.and(page.locator('[data-status="online"]')).waitFor({ timeout: 60_000 });
  const text = await row.innerText();
  if (!text.includes("Online")) throw new Error(`row does not say Online: ${text}`);
  if ((await page.getAttribute("html", "dir")) !== "ltr") throw new Error("English page is not left-to-right");
  await page.screenshot({ path: `${shots}/dashboard-en.png`, fullPage: true });

  // Hebrew: the whole layout turns right-to-left and the texts change.
  await page.click('[data-testid="lang-switch"]');
  if ((await page.getAttribute("html", "dir")) !== "rtl") throw new Error("Hebrew page is not right-to-left");
  if (!(await page.innerText("h1")).includes("לוח")) throw new Error("title not translated");
  if (!(await row.innerText()).includes("מחובר")) throw new Error("status not translated");
  await page.screenshot({ path: `${shots}/dashboard-he.png`, fullPage: true });
  console.log("online");

  // The test stops the device; the row must follow live, without reloading the page.
  await row.and(page.locator('[data-status="offline"]')).waitFor({ timeout: 60_000 });
  if (!(await row.innerText()).includes("מנותק")) throw new Error("offline status not shown");
  await page.screenshot({ path: `${shots}/dashboard-offline.png`, fullPage: true });
  // Signing out returns to the form, and the API no longer accepts the old session.
  await page.click('[data-testid="logout"]');
  await page.locator('[data-testid="login-form"]').waitFor();
  const refreshed = await page.evaluate(async () => (await fetch("/api/v1/auth/refresh", { method: "POST" })).status);
  if (refreshed !== 401) throw new Error(`refresh after sign-out answered ${refreshed}`);
  const real = errors.filter((e) => !e.includes("401"));
  if (real.length) throw new Error(`page errors: ${real.join("; ")}`);
  console.log("offline");
} finally {
  await browser.close();
}
