// Drives the try-on widget on the demo shop in headless Chromium (Debian's package, via
// playwright-core), the way a shopper would: on a phone, in Spanish, through onboarding,
// a photo upload, the result and the history; then the keyboard on a desktop in English;
// then a shop whose quota is spent. Saves a screenshot of each step.
//   API_BASE=http://127.0.0.1:8787 DEMO_URL=http://127.0.0.1:5173/ ARTIFACTS=artifacts/widget \
//   PERSON_IMAGE=path/to/person.jpg EXPECT_QUOTA_MESSAGE_URL='http://127.0.0.1:5173/?config=config-quota.js' \
//   node tests/browser/widget.mjs
// DEMO_URL must be served (scripts/demo-server.mjs) on another origin than the API, from
// a demo/config.js naming API_BASE and a publishable key whose client allows that origin.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import assert from "node:assert/strict";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required (see the comment at the top of ${import.meta.url})`);
  return value;
};
const API_BASE = env("API_BASE").replace(/\/+$/, "");
const DEMO_URL = env("DEMO_URL");
const ARTIFACTS = env("ARTIFACTS");
const PERSON_IMAGE = env("PERSON_IMAGE");
const QUOTA_URL = env("EXPECT_QUOTA_MESSAGE_URL");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(ARTIFACTS, { recursive: true });
readFileSync(PERSON_IMAGE); // fail early on a wrong path

// What the shopper must read: the widget's own sentences, written out again on purpose.
const EXPECTED = {
  es: { title: "Pruébatelo", continue: "Continuar", quota: "La prueba virtual no está disponible en este momento. Inténtalo de nuevo más tarde." },
  en: { title: "Try it on", continue: "Continue", quota: "Try-on is not available right now. Please try again later." },
};
// Every code of the API contract: none may ever reach the shopper's screen.
const ERROR_CODES = ["malformed_json", "missing_shopper_id", "missing_api_key", "invalid_api_key", "invalid_widget_token",
  "widget_token_expired", "origin_not_allowed", "client_inactive", "secret_key_required", "not_found", "payload_too_large",
  "invalid_image", "image_too_large", "invalid_garments", "upstream_rejected_input", "rate_limited", "quota_exceeded",
  "too_many_concurrent", "widget_rate_limited", "shopper_rate_limited", "shopper_daily_limit", "upstream_error",
  "upstream_malformed_response", "upstream_busy", "service_unavailable", "upstream_timeout"];

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 800 } };

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
const apiCalls = [];
let step = 0;

// Fails the run on console errors, page errors, dialogs and HTTP errors; `expectHttp`
// names the only failing responses a step expects (the quota refusal).
async function openPage(context, label) {
  const page = await context.newPage();
  page.expectHttp = () => false;
  page.on("dialog", async (d) => { problems.push(`${label}: unexpected dialog: ${d.message()}`); await d.dismiss(); });
  // Failed loads are judged by their response below; every other console error counts (CSP violations too).
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`${label}: console error: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`${label}: page error: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400 && !page.expectHttp(r)) problems.push(`${label}: HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  page.on("request", (r) => {
    if (r.url().startsWith(`${API_BASE}/api/`) && r.method() !== "OPTIONS") apiCalls.push({ label, method: r.method(), url: r.url(), headers: r.headers(), body: r.postData() });
  });
  return page;
}

const shot = (page, name) => page.screenshot({ path: `${ARTIFACTS}/${String(++step).padStart(2, "0")}-${name}.png` });

// The element inside the widget's (open) shadow root that has focus, by its data-testid.
const focusedInWidget = (page) => page.evaluate(() => {
  const active = document.querySelector("tryon-widget")?.shadowRoot?.activeElement;
  return active ? active.dataset.testid || active.tagName.toLowerCase() : null;
});
const isOpen = (page) => page.evaluate(() => { const host = document.querySelector("tryon-widget"); return Boolean(host && !host.hidden); });

async function openShop(page, url) {
  await page.goto(url);
  await page.getByTestId("try-on-button").first().waitFor();
  await page.waitForFunction(() => window.TryOn && window.TryOn.version);
}

async function passOnboardingIfShown(page) {
  const first = page.getByTestId("onboarding").or(page.getByTestId("picker"));
  await first.first().waitFor();
  if (await page.getByTestId("onboarding").isVisible()) {
    await page.getByTestId("consent").check();
    await page.getByTestId("continue").click();
  }
  await page.getByTestId("picker").waitFor();
}

// Width and height of a JPEG, from its SOF marker.
function jpegSize(bytes) {
  for (let i = 2; i < bytes.length;) {
    if (bytes[i] !== 0xff) throw new Error("not a JPEG");
    const marker = bytes[i + 1];
    const length = bytes.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return { height: bytes.readUInt16BE(i + 5), width: bytes.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  throw new Error("no JPEG frame header");
}

async function checkQuotaMessage(page, lang) {
  page.expectHttp = (r) => r.status() === 429 && r.request().method() === "POST" && r.url() === `${API_BASE}/api/jobs`;
  await openShop(page, QUOTA_URL);
  await page.getByTestId("try-on-button").first().click();
  await passOnboardingIfShown(page);
  await page.getByTestId("file-input").setInputFiles(PERSON_IMAGE);
  const message = page.getByTestId("error-message");
  await message.waitFor({ timeout: 60000 });
  assert.equal((await message.textContent()).trim(), EXPECTED[lang].quota, `the quota refusal reads as a sentence in ${lang}`);
  const shown = await page.evaluate(() => {
    const root = document.querySelector("tryon-widget").shadowRoot;
    return `${root.innerHTML}\n${root.textContent}\n${document.body.innerText}`;
  });
  for (const code of ERROR_CODES) assert.ok(!shown.includes(code), `the raw code ${code} is not shown`);
  await shot(page, `quota-${lang}`);
  page.expectHttp = () => false;
}

try {
  // ---- A phone, in Spanish: the whole flow. ----
  const phone = await browser.newContext({ ...PHONE, locale: "es-ES" });
  const page = await openPage(phone, "phone es");
  await openShop(page, DEMO_URL);
  assert.equal(await page.evaluate(() => navigator.language), "es-ES");
  await shot(page, "shop-phone");

  const opener = page.getByTestId("try-on-button").first();
  await opener.click();
  const dialog = page.getByTestId("dialog");
  await dialog.waitFor();
  await page.getByTestId("onboarding").waitFor();
  assert.equal(await dialog.getAttribute("role"), "dialog");
  assert.equal(await dialog.getAttribute("aria-modal"), "true");
  assert.equal(await dialog.getAttribute("lang"), "es", "navigator.language es-ES → Spanish");
  assert.equal((await page.getByTestId("title").textContent()).trim(), EXPECTED.es.title);
  assert.equal((await page.getByTestId("continue").textContent()).trim(), EXPECTED.es.continue);
  assert.ok(await page.getByTestId("continue").isDisabled(), "Continue waits for consent");
  assert.equal(await focusedInWidget(page), "consent", "focus moves into the dialog on open");
  const box = await dialog.boundingBox();
  assert.ok(box.x <= 0 && box.width >= 390 && box.height >= 844, "a full-screen sheet on a phone");
  await shot(page, "onboarding-es");

  await page.getByTestId("consent").check();
  await page.getByTestId("continue").click();
  await page.getByTestId("picker").waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem("tryon_onboarding_done")), "1");
  await shot(page, "picker-es");

  await page.getByTestId("file-input").setInputFiles(PERSON_IMAGE);
  const result = page.getByTestId("result-image");
  await page.getByTestId("progress").or(result).first().waitFor();
  if (await page.getByTestId("progress").isVisible()) await shot(page, "progress-es");
  await result.waitFor({ timeout: 200000 });
  await page.waitForFunction(() => {
    const img = document.querySelector("tryon-widget").shadowRoot.querySelector("[data-testid=result-image]");
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 30000 });
  const src = await result.getAttribute("src");
  assert.ok(src.startsWith(API_BASE), `the result comes from the API (${src})`);
  await shot(page, "result-es");

  // What went over the wire: a publishable key, the shopper id, a downscaled JPEG.
  const shopper = await page.evaluate(() => localStorage.getItem("tryon_shopper_id"));
  assert.match(shopper, /^anon_[A-Za-z0-9]{22}$/, "a random anonymous shopper id, kept in localStorage");
  const created = apiCalls.find((c) => c.method === "POST" && c.url === `${API_BASE}/api/jobs`);
  assert.ok(created, "a job was created");
  assert.match(created.headers["x-api-key"], /^vto_pk_/);
  assert.equal(created.headers["x-tryon-shopper"], shopper);
  const body = JSON.parse(created.body);
  assert.equal(body.model, "fal-virtual-try-on");
  assert.equal(body.garment_image_urls.length, 1);
  assert.match(body.person_image_url, /^data:image\/jpeg;base64,/);
  const size = jpegSize(Buffer.from(body.person_image_url.split(",")[1], "base64"));
  assert.ok(Math.max(size.width, size.height) <= 1024, `the photo is downscaled (${size.width}×${size.height})`);

  await page.getByTestId("open-history").click();
  const thumbs = page.getByTestId("history-item");
  await thumbs.first().waitFor();
  assert.ok((await thumbs.count()) >= 1);
  await page.waitForFunction(() => {
    const img = document.querySelector("tryon-widget").shadowRoot.querySelector("[data-testid=history-thumb]");
    return img && img.complete && img.naturalWidth > 0;
  });
  await shot(page, "history-es");
  await thumbs.first().click();
  await page.getByTestId("history-image").waitFor();
  await shot(page, "history-enlarged-es");
  await page.getByTestId("close").click();
  assert.equal(await isOpen(page), false, "the close button closes");
  assert.ok(await opener.evaluate((node) => node === document.activeElement), "focus returns to the button that opened it");

  // Onboarding is done once per browser.
  await page.reload();
  await openShop(page, DEMO_URL);
  await page.getByTestId("try-on-button").nth(1).click();
  await page.getByTestId("picker").waitFor();
  assert.equal(await page.getByTestId("onboarding").count(), 0, "the onboarding is not shown again");
  await shot(page, "picker-again-es");
  await page.keyboard.press("Escape");
  assert.equal(await isOpen(page), false, "Escape closes");

  await checkQuotaMessage(page, "es");
  await phone.close();

  // ---- A desktop, in English: keyboard only. ----
  const desktop = await browser.newContext({ ...DESKTOP, locale: "en-US" });
  const page2 = await openPage(desktop, "desktop en");
  await openShop(page2, DEMO_URL);
  const second = page2.getByTestId("try-on-button").nth(1);
  await second.focus();
  await page2.keyboard.press("Enter");
  await page2.getByTestId("onboarding").waitFor();
  assert.equal(await page2.getByTestId("dialog").getAttribute("lang"), "en", "navigator.language en-US → English");
  assert.equal((await page2.getByTestId("title").textContent()).trim(), EXPECTED.en.title);
  assert.equal((await page2.getByTestId("continue").textContent()).trim(), EXPECTED.en.continue);
  assert.equal(await focusedInWidget(page2), "consent");
  await page2.keyboard.press("Space");
  assert.ok(await page2.getByTestId("consent").isChecked(), "Space ticks the consent box");

  // Tab and Shift+Tab never leave the dialog, and come round again.
  const forward = [];
  for (let i = 0; i < 7; i++) { await page2.keyboard.press("Tab"); forward.push(await focusedInWidget(page2)); }
  assert.ok(forward.every(Boolean), `Tab stays in the dialog: ${forward}`);
  for (const id of ["close", "consent", "continue"]) assert.ok(forward.includes(id), `Tab reaches ${id}: ${forward}`);
  const cycle = new Set(forward).size;
  for (let i = 0; i + cycle < forward.length; i++) assert.equal(forward[i + cycle], forward[i], `Tab cycles: ${forward}`);
  const backward = [];
  for (let i = 0; i < 7; i++) { await page2.keyboard.press("Shift+Tab"); backward.push(await focusedInWidget(page2)); }
  assert.ok(backward.every(Boolean), `Shift+Tab stays in the dialog: ${backward}`);
  const order = forward.slice(0, cycle);
  const before = (id) => order[(order.indexOf(id) - 1 + cycle) % cycle];
  let expected = forward[forward.length - 1];
  for (const id of backward) { expected = before(expected); assert.equal(id, expected, `Shift+Tab walks back round: ${backward}`); }
  await shot(page2, "onboarding-en-desktop");
  await page2.keyboard.press("Escape");
  assert.equal(await isOpen(page2), false, "Escape closes");
  assert.ok(await second.evaluate((node) => node === document.activeElement), "focus returns to the button that opened it");

  // Buttons added after the widget loaded work too, and so does the JS API.
  await page2.evaluate(() => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Late button";
    button.dataset.testid = "late-button";
    button.dataset.tryonGarment = document.querySelector("[data-tryon-garment]").dataset.tryonGarment;
    document.querySelector("main").append(button);
  });
  await page2.getByTestId("late-button").click();
  await page2.getByTestId("onboarding").waitFor();
  await page2.getByTestId("consent").check();
  await page2.getByTestId("continue").click();
  await page2.getByTestId("picker").waitFor();
  await shot(page2, "picker-en-desktop");
  await page2.evaluate(() => window.TryOn.close());
  assert.equal(await isOpen(page2), false, "TryOn.close() closes");
  await page2.evaluate(() => window.TryOn.open({ garment: document.querySelector("[data-tryon-garment]").dataset.tryonGarment, name: "API test" }));
  await page2.getByTestId("picker").waitFor();
  assert.match(await page2.getByTestId("garment-name").textContent(), /API test/);
  await page2.evaluate(() => window.TryOn.close());

  await checkQuotaMessage(page2, "en");
  await desktop.close();

  assert.deepEqual(problems, [], "no dialogs, console errors, CSP violations or unexpected HTTP errors");
  console.log(`widget ok; ${apiCalls.length} API calls; screenshots in ${ARTIFACTS}`);
} finally {
  await browser.close();
}
