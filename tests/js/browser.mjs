// Launches Debian's Chromium for the browser tests (never a downloaded browser build).
// The background-networking flags keep Chromium from dialling out on a closed network.
import { chromium } from "playwright-core";

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

// Signs in through the dashboard's form with LUACH_EMAIL / LUACH_PASSWORD. With `wrongFirst`,
// first submits a wrong password and checks that the form says so.
export async function signIn(page, { wrongFirst = false } = {}) {
  const email = process.env.LUACH_EMAIL;
  const password = process.env.LUACH_PASSWORD;
  if (!email || !password) throw new Error("LUACH_EMAIL and LUACH_PASSWORD must be set");
  const form = page.locator('[data-testid="login-form"]');
  await form.waitFor();
  if (wrongFirst) {
    await form.locator('input[name="email"]').fill(email);
    await form.locator('input[name="password"]').fill(`${password}-wrong`);
    await form.locator('button[type="submit"]').click();
    const message = await page.locator('[data-testid="login-error"]').innerText();
    if (!message) throw new Error("no error shown for a wrong password");
  }
  await form.locator('input[name="email"]').fill(email);
  await form.locator('input[name="password"]').fill(password);
  await form.locator('button[type="submit"]').click();
  await form.waitFor({ state: "hidden" });
}
