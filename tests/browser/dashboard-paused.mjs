// The dashboard's "callbacks paused" banner, in headless Chromium: a client whose
// callbacks are paused shows the banner; its Resume button resumes them and the
// banner goes. Run by tests/e2e/deliveries.rs on its own stack (callbacks pause
// after 3 s of failures there), once the client is paused:
//   BASE_URL=… ADMIN_PASSWORD=… CLIENT_ID=… ARTIFACTS=… node tests/browser/dashboard-paused.mjs
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const { BASE_URL, ADMIN_PASSWORD, CLIENT_ID, ARTIFACTS } = process.env;
for (const [name, value] of Object.entries({ BASE_URL, ADMIN_PASSWORD, CLIENT_ID, ARTIFACTS })) {
  if (!value) throw new Error(`${name} is required`);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(ARTIFACTS, { recursive: true });

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on("dialog", async (d) => { problems.push(`unexpected dialog: ${d.message()}`); await d.dismiss(); });
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  let loggedIn = false; // only the session check before logging in may fail (401)
  page.on("response", (r) => {
    const expected = !loggedIn && r.status() === 401 && r.url().endsWith("/admin/session");
    if (r.status() >= 400 && !expected) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });

  await page.goto(`${BASE_URL}/admin`);
  await page.getByTestId("password").fill(ADMIN_PASSWORD);
  loggedIn = true;
  await page.getByTestId("login").click();
  await page.getByTestId("today-total").waitFor();
  await page.goto(`${BASE_URL}/admin#/clients/${encodeURIComponent(CLIENT_ID)}`);
  const banner = page.getByTestId("callbacks-paused");
  await banner.waitFor();
  assert.match(await banner.textContent(), /^Callbacks are paused\. /);
  assert.equal(await banner.getAttribute("role"), "status");
  await page.screenshot({ path: `${ARTIFACTS}/callbacks-paused.png`, fullPage: true });

  const resumed = page.waitForResponse((r) => r.request().method() === "POST" && r.url() === `${BASE_URL}/admin/clients/${encodeURIComponent(CLIENT_ID)}/callbacks/resume`);
  await page.getByTestId("resume-callbacks").click();
  assert.equal((await resumed).status(), 200);
  await banner.waitFor({ state: "detached" });
  await page.getByTestId("deliveries").waitFor();
  assert.equal(await page.getByTestId("callbacks-failing").count(), 0, "no longer failing either");
  await page.screenshot({ path: `${ARTIFACTS}/callbacks-resumed.png`, fullPage: true });
  assert.deepEqual(problems, [], "no dialogs, console errors or unexpected HTTP errors");
  console.log("paused banner ok");
} finally {
  await browser.close();
}
