// Drives the admin dashboard in headless Chromium (Debian's package, via
// playwright-core): log in, create a client, copy its key, give it a callback
// URL (a receiver started here), run a generation through the API with it,
// see it and its callback delivery in the dashboard, and redeliver the
// callback with the button. Saves a screenshot of each page. Run by tests/e2e/browser.rs against a live stack:
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
  assert.match(csp, /script-src 'self'/, "the page is served with a strict CSP");
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
  const { generation_id } = JSON.parse(generatedText);

  await page.reload();
  await page.getByTestId("events").waitFor();
  assert.equal((await page.getByTestId("client-name").textContent()).trim(), name);
  const event = page.getByTestId("event").filter({ hasText: generation_id });
  assert.equal(await event.count(), 1, "the generation appears in the client's recent events");
  assert.equal(await page.getByTestId("total").textContent(), "1");
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

  await page.getByTestId("nav-overview").click();
  await page.getByTestId("busiest").waitFor();
  await shot("05-overview-after");
  assert.deepEqual(problems, [], "no dialogs, console errors or CSP violations");
  console.log(`dashboard ok; screenshots in ${ARTIFACTS}`);
} finally {
  await browser.close();
  receiver.closeAllConnections();
  receiver.close();
}
