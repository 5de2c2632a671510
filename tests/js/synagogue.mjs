// A gabbai edits the synagogue in the dashboard and sees the preview (Chromium, playwright-core).
// usage: LUACH_EMAIL=… LUACH_PASSWORD=… node synagogue.mjs BASE_URL SCREENSHOT_DIR (a gabbai)
// Prints, as JSON, the times the preview shows for 2026-12-04 with the stringent minute rule
// (Mincha, Maariv, candle lighting, nightfall) and nightfall again after the gabbai chose
// "seconds dropped" (with the date that preview shows); exits 0 on success.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "en-US" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/#/synagogue`);
  await signIn(page);
  const form = page.locator('[data-testid="synagogue-form"]');
  await form.waitFor();

  // A bad schedule is refused with the failing path shown.
  await form.locator('input[name="name"]').fill("Beit Knesset HaGadol");
  await form.locator('textarea[name="schedule"]').fill(JSON.stringify({
    rules: [{ name: "Mincha", time: { zman: "sunset", offset_minutes: -15 }, round: { mode: "down", minutes: 7 }, days: ["every_day"] }],
  }));
  await page.click('[data-testid="save"]');
  const shown = await page.locator('[data-testid="errors"]').innerText();
  if (!shown.includes("schedule.rules[0]")) throw new Error(`error path not shown: ${shown}`);

  // Fixed, it saves and the preview shows the computed prayer time.
  await form.locator('textarea[name="schedule"]').fill(JSON.stringify({
    rules: [
      { name: "Mincha", time: { zman: "sunset", offset_minutes: -15 }, round: { mode: "down", minutes: 5 }, days: ["every_day"] },
      { name: "Maariv", time: { zman: "tzeit_8_5" }, days: ["every_day"] },
    ],
  }));
  await page.click('[data-testid="save"]');
  await page.locator('[role="status"]').waitFor();
  await page.fill('[data-testid="preview-date"]', "2026-12-04");
  await page.locator('[data-testid="preview-date"]').dispatchEvent("change");
  const mincha = page.locator('tr[data-kind="prayer"][data-name="Mincha"] td');
  // Wait for the table of the chosen day, not the one of today that may still be showing.
  await page.locator('[data-testid="preview"][data-date="2026-12-04"]').waitFor();
  if (!(await page.locator('[data-testid="hebrew-date"]').innerText()).includes("Kislev")) throw new Error("not Kislev");
  const cell = async (selector) => (await page.locator(`${selector} td`).innerText()).trim();
  const times = {
    mincha: (await mincha.innerText()).trim(),
    maariv: await cell('tr[data-kind="prayer"][data-name="Maariv"]'),
    candle_lighting: await cell('tr[data-kind="candle_lighting"]'),
    tzeit_8_5: await cell('tr[data-kind="tzeit_8_5"]'),
  };
  if (times.candle_lighting === "—") throw new Error("no candle lighting on a Friday");
  if (!(await page.locator('[data-testid="minutes"]').innerText()).includes("Stringent")) throw new Error("no minute rule shown");
  await page.screenshot({ path: `${shots}/synagogue-en.png`, fullPage: true });

  // The board's picture: drawn by the server's renderer, re-drawn when the look changes.
  const picture = page.locator('[data-testid="board-image"]');
  const drawn = async () => {
    await picture.waitFor();
    await page.waitForFunction(() => {
      const img = document.querySelector('[data-testid="board-image"]');
      return img && img.complete && img.naturalWidth > 0 && !img.classList.contains("loading");
    });
    return picture.evaluate((img) => {
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const [r, g, b] = ctx.getImageData(4, 4, 1, 1).data;
      return { width: img.naturalWidth, height: img.naturalHeight, corner: [r, g, b], src: img.src };
    });
  };
  const light = await drawn();
  if (light.width !== 1920 || light.height !== 1080) throw new Error(`picture is ${light.width}×${light.height}`);
  await page.selectOption('[data-testid="board-theme"]', "dark");
  await page.waitForFunction((old) => document.querySelector('[data-testid="board-image"]')?.src !== old, light.src);
  const dark = await drawn();
  const brightness = (c) => c[0] + c[1] + c[2];
  if (!(brightness(dark.corner) < brightness(light.corner))) {
    throw new Error(`the dark theme is not darker: ${light.corner} then ${dark.corner}`);
  }
  await page.selectOption('[data-testid="board-layout"]', "portrait");
  await page.waitForFunction((old) => document.querySelector('[data-testid="board-image"]')?.src !== old, dark.src);
  const portrait = await drawn();
  if (portrait.width !== 1080 || portrait.height !== 1920) throw new Error(`portrait is ${portrait.width}×${portrait.height}`);
  await page.screenshot({ path: `${shots}/synagogue-board.png`, fullPage: true });

  // Hebrew, right-to-left.
  await page.click('[data-testid="lang-switch"]');
  if ((await page.getAttribute("html", "dir")) !== "rtl") throw new Error("not right-to-left");
  if (!(await page.locator("main:not([hidden]) h2").innerText()).includes("בית הכנסת")) throw new Error("heading not translated");
  await page.screenshot({ path: `${shots}/synagogue-he.png`, fullPage: true });
  // The minute rule: seconds dropped, saved, and the preview follows.
  await form.locator('select[name="minutes"]').selectOption("down");
  await page.click('[data-testid="save"]');
  const preview = page.locator('[data-testid="preview"][data-minutes="down"]');
  await preview.waitFor();
  if (await page.locator('[data-testid="errors"]').count()) {
    throw new Error(`minute rule refused: ${await page.locator('[data-testid="errors"]').innerText()}`);
  }
  times.down = { date: await preview.getAttribute("data-date"), tzeit_8_5: await cell('tr[data-kind="tzeit_8_5"]') };
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify(times));
} finally {
  await browser.close();
}
