// A tenant admin adds a waiting screen by its claim code in the dashboard (Chromium,
// playwright-core). usage: LUACH_EMAIL=… LUACH_PASSWORD=… [LUACH_REKEY_CSR=…] node claim.mjs
// BASE_URL CLAIM_CODE DEVICE_ID. Prints `claimed` once a wrong code was refused with a message
// and the right one added the screen, and the plan line (`plan: …`). With LUACH_REKEY_CSR, the
// same device id then asks again with another key: the page must explain that claiming would
// replace the enrolled screen's key, change nothing when cancelled, and re-key on confirmation
// (prints `rekeyed`).
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
  console.log("claimed");
  const plan = page.locator('[data-testid="plan"]');
  await plan.waitFor();
  console.log(`plan: ${await plan.innerText()}`);

  const csr = process.env.LUACH_REKEY_CSR;
  if (csr) {
    const asked = await page.request.post(`${base}/api/v1/enrolment/requests`, { data: { device_id: device, csr_pem: csr } });
    if (asked.status() !== 201) throw new Error(`second request: ${asked.status()} ${await asked.text()}`);
    const second = (await asked.json()).data.claim_code;
    const claimWith = async () => {
      await form.locator('input[name="claim_code"]').fill(second);
      await form.locator('button[type="submit"]').click();
      const confirm = page.locator('[data-testid="rekey-confirm"]');
      await confirm.waitFor();
      const text = await confirm.innerText();
      if (!text.includes(device) || !text.includes("new key")) throw new Error(`confirmation unclear: ${text}`);
      return confirm;
    };
    const confirm = await claimWith();
    await page.locator('[data-testid="rekey-no"]').click();
    await confirm.waitFor({ state: "detached" });
    console.log("cancelled");
    await claimWith();
    await page.locator('[data-testid="rekey-yes"]').click();
    await page.locator('[data-testid="claimed"]').waitFor();
    console.log("rekeyed");
  }
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
} finally {
  await browser.close();
}
