// An operator rolls a signed release out in phases from the dashboard's jobs page (in Hebrew):
// picks the release, types the phases, and follows the roll-out live as the second phase fails
// and pauses it by itself; resuming accepts that phase and the last one completes it
// (Chromium, playwright-core).
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node rollout.mjs BASE_URL SCREENSHOT_DIR DEVICES
// Prints one JSON line: {release, paused: {state, phase, reason, latest}, completed: {state, phase}}.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots, devices] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "he-IL" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/#/jobs`);
  await signIn(page);
  const form = page.locator('[data-testid="job-form"]');
  await form.waitFor();
  await form.locator('[data-testid="job-command"]').selectOption("update");
  const release = form.locator('[data-testid="job-release"]');
  await release.waitFor();
  const releaseLabel = await release.locator("option:checked").innerText();
  await form.locator('[data-testid="job-target"]').selectOption("devices");
  await form.locator('[data-testid="job-target-text"]').fill(devices);
  await form.locator('[data-testid="job-phases"]').fill("1, 2");
  await form.locator('[data-testid="job-rollout-pause-failure-percent"]').fill("0");
  await form.locator('[data-testid="job-send"]').click();

  const card = page.locator('[data-testid="job"]').first();
  await page.locator('[data-testid="job"][data-state="paused"]').first().waitFor({ timeout: 60_000 });
  await card.locator('[data-testid="job-latest"]').waitFor();
  const paused = {
    state: await card.locator('[data-testid="job-state"]').innerText(),
    phase: await card.locator('[data-testid="job-phase"]').innerText(),
    reason: await card.locator('[data-testid="job-reason"]').innerText(),
    latest: await card.locator('[data-testid="job-latest"]').innerText(),
  };
  await card.locator('[data-testid="job-resume"]').click();
  await page.locator('[data-testid="job"][data-state="completed"]').first().waitFor({ timeout: 60_000 });
  const completed = {
    state: await card.locator('[data-testid="job-state"]').innerText(),
    phase: await card.locator('[data-testid="job-phase"]').innerText(),
  };
  await page.screenshot({ path: `${shots}/rollout.png`, fullPage: true });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ release: releaseLabel, paused, completed }));
} finally {
  await browser.close();
}
