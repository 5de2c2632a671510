// A gabbai manages announcements and memorial plaques in the dashboard (Chromium,
// playwright-core). usage: LUACH_EMAIL=… LUACH_PASSWORD=… node content.mjs BASE_URL SHOTS DATE_OF_PASSING
// Prints one JSON line: {"yahrzeits": [memorial ids shown in the coming-yahrzeits table]}.
import { launchChromium, signIn } from "./browser.mjs";

const [base, shots, passed] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ locale: "en-US" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/#/content`);
  await signIn(page);
  const announcements = page.locator('[data-testid="announcements"]');
  const form = page.locator('[data-testid="announcement-form"]');

  // An empty announcement is refused with the field named.
  await form.locator('button[type="submit"]').click();
  const refused = await page.locator('[data-testid="announcement-errors"]').innerText();
  if (!refused.includes("text_he")) throw new Error(`no field error shown: ${refused}`);

  await form.locator('input[name="text_he"]').fill("קידוש אחרי התפילה");
  await form.locator('input[name="text_en"]').fill("Kiddush after davening");
  await form.locator('button[type="submit"]').click();
  await announcements.getByText("Kiddush after davening").waitFor();
  if (await page.locator('[data-testid="announcement-errors"]').count()) throw new Error("errors left after a good save");

  const memorial = page.locator('[data-testid="memorial-form"]');
  await memorial.locator('input[name="name"]').fill("Sarah bat Avraham");
  await memorial.locator('input[name="family"]').fill("Cohen");
  await memorial.locator('input[name="date"]').fill(passed);
  await memorial.locator('button[type="submit"]').click();
  await page.locator('[data-testid="memorials"] li[data-id]').first().waitFor();
  await page.screenshot({ path: `${shots}/content-en.png`, fullPage: true });

  // Hebrew: right-to-left, Hebrew text first.
  await page.click('[data-testid="lang-switch"]');
  if ((await page.getAttribute("html", "dir")) !== "rtl") throw new Error("Hebrew page is not right-to-left");
  await announcements.getByText("קידוש אחרי התפילה").waitFor();
  await page.screenshot({ path: `${shots}/content-he.png`, fullPage: true });

  // Removing the announcement empties the list.
  await page.click('[data-testid="delete-announcement"]');
  await announcements.locator("li[data-id]").waitFor({ state: "detached" });

  const yahrzeits = await page.locator('[data-testid="yahrzeits"] tr[data-memorial]').evaluateAll((rows) => rows.map((r) => r.dataset.memorial));
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ yahrzeits }));
} finally {
  await browser.close();
}
