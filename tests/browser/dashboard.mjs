// Drives the admin dashboard in headless Chromium (Debian's package, via
// playwright-core): log in, create a client, copy its key, run a generation
// through the API with it, and see it in the dashboard. Saves a screenshot of
// each page. Run by tests/e2e/browser.rs against a live stack:
//   BASE_URL=… ADMIN_PASSWORD=… EMULATOR_URL=… ARTIFACTS=… node tests/browser/dashboard.mjs
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const { BASE_URL, ADMIN_PASSWORD, EMULATOR_URL, ARTIFACTS } = process.env;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(ARTIFACTS, { recursive: true });

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE_URL });
  const page = await context.newPage();
  page.on("dialog", async (d) => { problems.push(`unexpected dialog: ${d.message()}`); await d.dismiss(); });
  // Failed loads are judged by their response below; every other console error counts.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`); });
  // Only the session check before logging in may fail (401: not logged in yet).
  let loggedIn = false;
  page.on("response", (r) => {
    const expected = !loggedIn && r.status() === 401 && r.url().endsWith("/admin/session");
    if (r.status() >= 400 && !expected) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  const shot = (name) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });

  const response = await page.goto(`${BASE_URL}/admin`);
  const csp = response.headers()["content-security-policy"] || "";
  const directive = (name) => csp.split(";").map((d) => d.trim()).find((d) => d.split(/\s+/)[0] === name);
  assert.equal(directive("script-src"), "script-src 'self'", `scripts only from our origin: ${csp}`);
  assert.equal(directive("style-src"), "style-src 'self'", `styles only from our origin: ${csp}`);
  assert.equal(directive("default-src"), "default-src 'none'", csp);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, "no inline script or style may run");
  await page.getByTestId("password").fill(ADMIN_PASSWORD);
  await shot("01-login");
  loggedIn = true;
  await page.getByTestId("login").click();
  await page.getByTestId("today-total").waitFor();
  await shot("02-overview");

  // A client whose name is HTML must show as text, and run nothing.
  const name = `<b>Bold & Co</b> <img src=x onerror=alert(1)> ${Date.now()}`;
  await page.getByTestId("nav-clients").click();
  await page.getByTestId("new-name").fill(name);
  await page.getByTestId("create").click();
  const keyBox = page.getByTestId("new-key-value");
  await keyBox.waitFor();
  const shown = (await keyBox.textContent()).trim();
  assert.match(shown, /^vto_[a-z0-9]{16}_[A-Za-z0-9]{38}$/);
  await page.getByTestId("new-key-copy").click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, shown, "the copy button puts the key on the clipboard");
  const link = page.getByTestId("client-link").filter({ hasText: name });
  assert.equal(await link.count(), 1, "the new client is listed under its literal name");
  await shot("03-clients-new-key");

  // A generation through the public API, with the copied key.
  const generated = await fetch(`${BASE_URL}/api/images/generate`, {
    method: "POST",
    headers: { "x-api-key": copied, "content-type": "application/json" },
    body: JSON.stringify({
      model: "fal-virtual-try-on",
      person_image_url: `${EMULATOR_URL}/samples/person.png`,
      garment_image_urls: [`${EMULATOR_URL}/samples/garment.png`],
    }),
  });
  const generatedText = await generated.text();
  assert.equal(generated.status, 200, generatedText);
  const { generation_id, duration_ms } = JSON.parse(generatedText);

  await page.reload();
  // The clients list counts it against the limit.
  const row = page.getByTestId("client-row").filter({ hasText: name });
  await row.waitFor();
  assert.match(await row.textContent(), /1 \/ 5,000/, "usage this month against the limit");
  await page.getByTestId("client-link").filter({ hasText: name }).click();
  await page.getByTestId("events").waitFor();
  assert.equal((await page.getByTestId("client-name").textContent()).trim(), name);
  const event = page.getByTestId("event").filter({ hasText: generation_id });
  assert.equal(await event.count(), 1, "the generation appears in the client's recent events");
  assert.equal(await page.getByTestId("total").textContent(), "1");
  // p50 and p95 of one generation are both its duration.
  const percentiles = (await page.getByTestId("percentiles").textContent()).trim();
  const duration = `${duration_ms.toLocaleString("en-US")} ms`;
  assert.equal(percentiles, `${duration} / ${duration}`);
  assert.equal(await page.getByText("fal-virtual-try-on: 1", { exact: true }).count(), 1, "totals by model");
  const today = new Date().toISOString().slice(0, 10);
  const bars = await page.locator('[data-testid="chart"] rect.success title').allTextContents();
  assert.equal(bars.length, 30, "thirty days of bars");
  assert.equal(bars.filter((t) => t === `${today}: 1 ok, 0 errors`).length, 1, `today's bar: ${bars.slice(-2)}`);
  assert.equal(bars.filter((t) => !t.endsWith(": 0 ok, 0 errors")).length, 1, "no other day has generations");
  const thumb = event.locator("img.thumb");
  await thumb.waitFor();
  assert.ok(await thumb.evaluate((img) => img.complete && img.naturalWidth > 0), "the result thumbnail loads");
  await page.getByTestId("chart").waitFor();
  await shot("04-client");

  // Rotating from the client's page (no grace period) shows the new key once
  // and stops the old one at once.
  await page.getByTestId("rotate").click();
  const rotatedBox = page.getByTestId("new-key-value");
  await rotatedBox.waitFor();
  const rotated = (await rotatedBox.textContent()).trim();
  assert.notEqual(rotated, copied);
  const usageWith = async (key) => (await fetch(`${BASE_URL}/api/usage`, { headers: { "x-api-key": key } })).status;
  assert.equal(await usageWith(copied), 401, "the old key stopped");
  assert.equal(await usageWith(rotated), 200, "the new key works");

  // The settings form saves, and the limiter applies it to the next request.
  await page.getByTestId("edit-limit").fill("7");
  await page.getByTestId("save").click();
  await page.getByText("Saved", { exact: true }).waitFor();
  const usage = await (await fetch(`${BASE_URL}/api/usage`, { headers: { "x-api-key": rotated } })).json();
  assert.equal(usage.limit, 7, "the monthly limit set in the form");

  await page.getByTestId("nav-overview").click();
  await page.getByTestId("busiest").waitFor();
  // Other tests share the stack: at least our generation is counted today.
  const todayTotal = Number((await page.getByTestId("today-total").locator(".value").textContent()).replace(/,/g, ""));
  assert.ok(todayTotal >= 1, `today's total counts our generation: ${todayTotal}`);
  assert.match(await page.getByTestId("error-rate").locator(".value").textContent(), /^\d+\.\d%$/, "an error rate once there are generations");
  await shot("05-overview-after");
  assert.deepEqual(problems, [], "no dialogs, console errors or CSP violations");
  console.log(`dashboard ok; screenshots in ${ARTIFACTS}`);
} finally {
  await browser.close();
}
