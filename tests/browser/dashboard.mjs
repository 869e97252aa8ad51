// Drives the admin dashboard in headless Chromium (Debian's package, via
// playwright-core): log in, create a client, copy its key, give it a callback
// URL (a receiver started here), run a generation through the API with it,
// see it and its callback delivery in the dashboard, and redeliver the
// callback with the button; rotate its key with and without a grace period,
// revoke a key, edit its settings, and delete it. Saves a screenshot of each page. Run by tests/e2e/browser.rs against a live stack:
//   BASE_URL=… ADMIN_PASSWORD=… EMULATOR_URL=… ARTIFACTS=… node tests/browser/dashboard.mjs
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import assert from "node:assert/strict";

const { BASE_URL, ADMIN_PASSWORD, EMULATOR_URL, ARTIFACTS } = process.env;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(ARTIFACTS, { recursive: true });

// The shop's callback receiver: records each delivery's webhook-id and answers 204.
const received = [];
const receiver = createServer((req, res) => {
  req.resume();
  req.on("end", () => { received.push(req.headers["webhook-id"]); res.writeHead(204).end(); });
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
async function until(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
// The confirm() the dashboard asks before a destructive action: accepted only
// when a step expects one (`expectDialog`), a problem otherwise.
let expectDialog = null;
const confirmed = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE_URL });
  const page = await context.newPage();
  page.on("dialog", async (d) => {
    if (d.type() === "confirm" && expectDialog && expectDialog.test(d.message())) {
      confirmed.push(d.message());
      expectDialog = null;
      await d.accept();
    } else {
      problems.push(`unexpected dialog: ${d.message()}`);
      await d.dismiss();
    }
  });
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

  // The client's callbacks go to our receiver; the signing secret is shown once.
  await link.click();
  await page.getByTestId("deliveries").waitFor();
  await page.getByTestId("webhook-url").fill(hookUrl);
  await page.getByTestId("save").click();
  await page.getByTestId("webhook-secret-value").waitFor();
  assert.match((await page.getByTestId("webhook-secret-value").textContent()).trim(), /^whsec_/);

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
  // Our URL may redirect to FAL's copy while ours is being made: wait for the load to end.
  await thumb.scrollIntoViewIfNeeded();
  const loaded = await thumb.evaluate((img) => (img.complete && img.naturalWidth > 0) || new Promise((resolve) => {
    img.addEventListener("load", () => resolve(img.naturalWidth > 0));
    img.addEventListener("error", () => resolve(false));
    setTimeout(() => resolve(img.complete && img.naturalWidth > 0), 10000);
  }));
  assert.ok(loaded, "the result thumbnail loads");
  const thumbSrc = await thumb.getAttribute("src");
  assert.ok(thumbSrc.startsWith(`${BASE_URL}/v1/results/${generation_id}?`), `the thumbnail is our durable URL: ${thumbSrc}`);
  await page.getByTestId("chart").waitFor();

  // Its generation.completed callback, delivered, then redelivered with the button.
  await until("the callback", () => received.length === 1);
  const callbackRow = () => page.getByTestId("delivery").filter({ hasText: "generation.completed" });
  await until("the delivered callback in the dashboard", async () => {
    await page.reload();
    await page.getByTestId("deliveries").waitFor();
    return (await callbackRow().filter({ hasText: "delivered" }).count()) === 1;
  });
  await callbackRow().getByTestId("redeliver").click();
  await until("the redelivery", () => received.length === 2);
  assert.equal(received[1], received[0], "a redelivery keeps the webhook-id, so the shop can drop it");
  assert.equal(received[0], `msg_${generation_id}`);
  await until("the redelivery in the dashboard", async () => {
    await page.reload();
    await page.getByTestId("deliveries").waitFor();
    return (await callbackRow().filter({ hasText: "2 attempts" }).filter({ hasText: "delivered" }).count()) === 1;
  });
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

  // The widget: no publishable key yet, then one, shown whole in the keys
  // table and in a ready-to-paste embed snippet naming this API.
  await page.getByTestId("no-publishable").waitFor();
  await page.getByTestId("new-publishable").click();
  const snippet = page.getByTestId("embed-snippet");
  await snippet.waitFor();
  const embed = (await snippet.textContent()).trim();
  const publishable = embed.match(/^<script src="([^"]+)\/widget\.js" data-key="(vto_pk_[A-Za-z0-9_]+)" defer><\/script>/);
  assert.ok(publishable, `the snippet is a script tag with the key: ${embed}`);
  assert.equal(publishable[1], new URL(BASE_URL).origin, "the snippet loads the widget from this API");
  assert.ok((await page.getByTestId("key-publishable").textContent()).includes(publishable[2]), "the publishable key is shown whole");
  assert.equal((await fetch(`${BASE_URL}/widget.js`)).status, 200, "the snippet's script is served");
  const asWidget = { "x-api-key": publishable[2], "x-tryon-shopper": "anon_dashboardtest0000000000" };
  assert.equal((await fetch(`${BASE_URL}/api/usage`, { headers: asWidget })).status, 403, "a publishable key cannot read usage");
  await shot("04b-widget");
  const clientId = decodeURIComponent(new URL(page.url()).hash.replace("#/clients/", ""));
  const adminClient = async () => {
    const answer = await page.request.get(`${BASE_URL}/admin/clients/${encodeURIComponent(clientId)}`);
    return { status: answer.status(), body: answer.ok() ? await answer.json() : null };
  };
  assert.equal((await adminClient()).body.name, name, `the client's id from the page's address: ${clientId}`);

  // Rotating with a grace period: the old key keeps working, listed as expiring.
  const secretRow = (key) => page.getByTestId("key-secret").filter({ hasText: key.slice(0, 25) }); // the shown prefix
  await page.locator("select:has(option[value='3600'])").selectOption("3600");
  await page.getByTestId("rotate").click();
  let graced = "";
  await until("the second rotated key", async () => {
    const box = page.getByTestId("new-key-value");
    graced = (await box.count()) ? (await box.textContent()).trim() : "";
    return graced && graced !== rotated;
  });
  assert.equal(await usageWith(rotated), 200, "the old key works through its grace period");
  assert.equal(await usageWith(graced), 200, "the new key works");
  assert.match(await secretRow(rotated).textContent(), /expiring/);
  assert.match(await secretRow(graced).textContent(), /active/);

  // Revoking asks first; accepted, the key stops at once and is listed as revoked.
  expectDialog = /^Revoke vto_/;
  await secretRow(rotated).getByRole("button", { name: "Revoke" }).click();
  await until("the key listed as revoked", async () => /revoked/.test(await secretRow(rotated).textContent()));
  assert.deepEqual(confirmed, [`Revoke ${rotated.slice(0, 25)}…? It stops working at once.`]);
  assert.equal(await usageWith(rotated), 401, "the revoked key stopped");
  assert.equal(await usageWith(graced), 200, "the other key goes on");

  // Origins, active, callback event types and retention: saved, and shown again after a reload.
  const origins = ["https://shop.example", "https://www.shop.example"];
  await page.getByLabel("Allowed origins (one per line)").fill(origins.join("\n"));
  await page.getByLabel("Keep result images (days)").fill("45");
  await page.getByLabel("job.failed", { exact: true }).uncheck();
  await page.getByLabel("Active", { exact: true }).uncheck();
  const saved = page.waitForResponse((r) => r.request().method() === "PATCH" && r.url() === `${BASE_URL}/admin/clients/${encodeURIComponent(clientId)}`);
  await page.getByTestId("save").click();
  assert.equal((await saved).status(), 200);
  const stored = (await adminClient()).body;
  assert.deepEqual(stored.allowed_origins, origins);
  assert.equal(stored.retention_days, 45);
  assert.deepEqual(stored.webhook_events, ["job.completed", "generation.completed"]);
  assert.equal(stored.active, false);
  assert.equal(await usageWith(graced), 403, "an inactive client's key is refused");
  await page.reload();
  await page.getByTestId("edit-client").waitFor();
  assert.equal(await page.getByLabel("Allowed origins (one per line)").inputValue(), origins.join("\n"));
  assert.equal(await page.getByTestId("edit-retention").inputValue(), "45");
  assert.equal(await page.getByLabel("job.failed", { exact: true }).isChecked(), false);
  assert.equal(await page.getByLabel("job.completed", { exact: true }).isChecked(), true);
  assert.equal(await page.getByLabel("Active", { exact: true }).isChecked(), false);
  await shot("04c-keys-and-settings");

  await page.getByTestId("nav-overview").click();
  await page.getByTestId("busiest").waitFor();
  // Other tests share the stack: at least our generation is counted today.
  const todayTotal = Number((await page.getByTestId("today-total").locator(".value").textContent()).replace(/,/g, ""));
  assert.ok(todayTotal >= 1, `today's total counts our generation: ${todayTotal}`);
  assert.match(await page.getByTestId("error-rate").locator(".value").textContent(), /^\d+\.\d%$/, "an error rate once there are generations");
  await shot("05-overview-after");

  // Deleting the client asks first; then it is gone and its keys stop.
  await page.goto(`${BASE_URL}/admin#/clients/${encodeURIComponent(clientId)}`);
  await page.getByTestId("delete-client").waitFor();
  expectDialog = /^Delete /;
  await page.getByTestId("delete-client").click();
  await page.waitForURL((url) => url.hash === "#/clients");
  await page.getByTestId("clients").waitFor();
  assert.equal(confirmed.length, 2, "the delete was confirmed");
  assert.ok(confirmed[1].startsWith(`Delete ${name}?`), confirmed[1]);
  assert.equal((await adminClient()).status, 404, "the client is gone");
  assert.equal(await page.getByTestId("client-link").filter({ hasText: name }).count(), 0, "and no longer listed");
  assert.equal(await usageWith(graced), 401, "its key stopped");
  await shot("06-client-deleted");
  assert.deepEqual(problems, [], "no dialogs, console errors or CSP violations");
  console.log(`dashboard ok; screenshots in ${ARTIFACTS}`);
} finally {
  await browser.close();
  receiver.closeAllConnections();
  receiver.close();
}
