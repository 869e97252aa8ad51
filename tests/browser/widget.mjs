// Drives the try-on widget on the demo shop in headless Chromium (Debian's package, via
// playwright-core), the way a shopper would: on a phone, in Spanish, through onboarding,
// a photo upload, the result and the history; then the keyboard on a desktop in English;
// then a shop whose quota is spent; then a shop with a back end that hands the widget
// session tokens, in Spanish by data-lang on an English browser, with the page events
// and the live job stream checked. Saves a screenshot of each step.
//   API_BASE=http://127.0.0.1:8787 DEMO_URL=http://127.0.0.1:5173/ ARTIFACTS=artifacts/widget \
//   PERSON_IMAGE=path/to/person.jpg EXPECT_QUOTA_MESSAGE_URL='http://127.0.0.1:5173/?config=config-quota.js' \
//   TOKEN_SHOP_URL='http://127.0.0.1:5173/?config=config-token.js' SECRET_KEY=vto_… node tests/browser/widget.mjs
// DEMO_URL must be served (scripts/demo-server.mjs) on another origin than the API, from
// a demo/config.js naming API_BASE and a publishable key whose client allows that origin.
// The token shop's config names `sessionUrl: "/tryon/session"` and `lang: "es"`; this script
// plays that shop's back end (the static demo server has none), minting each token with
// SECRET_KEY, the secret key of a client that allows the demo's origin.
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
const TOKEN_URL = env("TOKEN_SHOP_URL");
const SECRET_KEY = env("SECRET_KEY");
const SHOP_ORIGIN = new URL(TOKEN_URL).origin;
const CUSTOMER = "customer-42"; // the token shop's own id for its logged-in shopper
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
const apiAnswers = [];
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
  page.on("response", (r) => {
    if (r.url().startsWith(`${API_BASE}/api/`) && r.request().method() !== "OPTIONS") apiAnswers.push({ label, url: r.url(), status: r.status(), type: r.headers()["content-type"] || "" });
  });
  // The page's own listeners for the documented `tryon:*` events, there before any script runs.
  await page.addInitScript(() => {
    window.tryonEvents = [];
    for (const type of ["tryon:ready", "tryon:open", "tryon:close", "tryon:result", "tryon:error"]) {
      document.addEventListener(type, (event) => window.tryonEvents.push({ type, detail: event.detail }));
    }
  });
  return page;
}

// The token shop's back end: what `POST /api/widget-sessions` with its secret key answers.
// `at` (ms) mints it on the stack's test clock, e.g. in the past so it has already expired.
async function mintToken(shopper, at) {
  const response = await fetch(`${API_BASE}/api/widget-sessions`, {
    method: "POST",
    headers: { "x-api-key": SECRET_KEY, "content-type": "application/json", ...(at ? { "x-test-now": String(at) } : {}) },
    body: JSON.stringify({ origin: SHOP_ORIGIN, shopper_id: shopper, ttl_seconds: 900 }),
  });
  const text = await response.text();
  assert.equal(response.status, 201, text);
  return JSON.parse(text);
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
  // …but the page is told it precisely, for its analytics.
  const events = await page.evaluate(() => window.tryonEvents);
  assert.deepEqual(events.map((e) => e.type), ["tryon:ready", "tryon:open", "tryon:error"], JSON.stringify(events));
  assert.deepEqual(events[2].detail, { code: "quota_exceeded", status: 429 });
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

  // ---- A shop with a back end: session tokens, data-lang="es" on an English browser. ----
  const tokenContext = await browser.newContext({ ...DESKTOP, locale: "en-US" });
  const sessionRequests = [];
  const minted = [];
  // The shop's back end at the page's own origin: it mints a token for its logged-in
  // customer with its secret key, and passes the API's answer through. Its first token
  // was minted two hours ago (the visitor left the tab open), so it has expired.
  await tokenContext.route(`${SHOP_ORIGIN}/tryon/session`, async (route) => {
    sessionRequests.push({ method: route.request().method(), body: route.request().postData() });
    const answer = await mintToken(CUSTOMER, sessionRequests.length === 1 ? Date.now() - 2 * 3600 * 1000 : undefined);
    minted.push(answer.token);
    await route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(answer) });
  });
  const page3 = await openPage(tokenContext, "token");
  const jobsUrl = `${API_BASE}/api/jobs`;
  page3.expectHttp = (r) => r.status() === 401 && r.request().method() === "POST" && r.url() === jobsUrl;
  await openShop(page3, TOKEN_URL);
  assert.equal(await page3.evaluate(() => navigator.language), "en-US");
  const tokenButton = page3.getByTestId("try-on-button").first();
  const garment = new URL(await tokenButton.getAttribute("data-tryon-garment"), TOKEN_URL).href;
  await tokenButton.click();
  await page3.getByTestId("onboarding").waitFor();
  assert.equal(await page3.getByTestId("dialog").getAttribute("lang"), "es", "data-lang=\"es\" wins over an English browser");
  assert.equal((await page3.getByTestId("title").textContent()).trim(), EXPECTED.es.title);
  assert.equal((await page3.getByTestId("continue").textContent()).trim(), EXPECTED.es.continue);
  await page3.getByTestId("consent").check();
  await page3.getByTestId("continue").click();
  await page3.getByTestId("picker").waitFor();
  assert.equal(sessionRequests.length, 0, "no token is asked for before the first API call");
  await page3.getByTestId("file-input").setInputFiles(PERSON_IMAGE);
  const tokenResult = page3.getByTestId("result-image");
  await tokenResult.waitFor({ timeout: 200000 });
  await page3.waitForFunction(() => {
    const img = document.querySelector("tryon-widget").shadowRoot.querySelector("[data-testid=result-image]");
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 30000 });
  const tokenSrc = await tokenResult.getAttribute("src");
  await shot(page3, "result-token-es");
  await page3.getByTestId("close").click();

  page3.expectHttp = () => false;

  // A POST {} to the shop's session URL on first use; the API answered that (expired) token
  // 401 widget_token_expired, so the widget asked again and repeated the request once.
  // Then that token on every API call: no key, no shopper header.
  const session = { method: "POST", body: "{}" };
  assert.deepEqual(sessionRequests, [session, session], "asked on first use, and again after widget_token_expired");
  for (const token of minted) assert.match(token, /^vto_wt_/);
  const tokenCalls = apiCalls.filter((c) => c.label === "token");
  const creates = tokenCalls.filter((c) => c.method === "POST" && c.url === jobsUrl);
  assert.deepEqual(creates.map((c) => c.headers.authorization), [`Bearer ${minted[0]}`, `Bearer ${minted[1]}`], "the job request repeated once with the new token");
  assert.equal(creates[1].headers["idempotency-key"], creates[0].headers["idempotency-key"], "the repeat is the same request");
  const refusal = apiAnswers.filter((a) => a.label === "token" && a.url === jobsUrl).map((a) => a.status);
  assert.deepEqual(refusal.slice(0, 1), [401], `the API refused the expired token: ${refusal}`);
  assert.equal(tokenCalls[0], creates[0], "the first API call was the job");
  for (const call of tokenCalls.slice(1)) {
    assert.equal(call.headers.authorization, `Bearer ${minted[1]}`, `${call.method} ${call.url}`);
    assert.equal(call.headers["x-api-key"], undefined, `no key with a token: ${call.url}`);
    assert.equal(call.headers["x-tryon-shopper"], undefined, `the token names the shopper: ${call.url}`);
  }

  // The page heard what the README lists, in order, with the documented details.
  const events = await page3.evaluate(() => window.tryonEvents);
  assert.deepEqual(events.map((e) => e.type), ["tryon:ready", "tryon:open", "tryon:result", "tryon:close"], JSON.stringify(events));
  assert.deepEqual(events[1].detail, { garment });
  const { jobId } = events[2].detail;
  assert.deepEqual(events[2].detail, { jobId, imageUrl: tokenSrc, garment });
  assert.match(jobId, /\S/);
  assert.equal(events[3].detail, null);

  // The job was followed live over its event stream, not by polling.
  const jobUrl = `${API_BASE}/api/jobs/${encodeURIComponent(jobId)}`;
  const streams = tokenCalls.filter((c) => c.method === "GET" && c.url === `${jobUrl}/events`);
  assert.equal(streams.length, 1, `one event stream: ${tokenCalls.map((c) => `${c.method} ${c.url}`)}`);
  assert.equal(streams[0].headers.accept, "text/event-stream");
  const streamAnswer = apiAnswers.find((a) => a.label === "token" && a.url === `${jobUrl}/events`);
  assert.ok(streamAnswer && streamAnswer.status === 200 && streamAnswer.type.startsWith("text/event-stream"), JSON.stringify(streamAnswer));
  assert.equal(tokenCalls.filter((c) => c.method === "GET" && c.url === jobUrl).length, 0, "no polling while the stream works");

  // TryOn.configure({ token }): a fixed token for the same customer; their history follows them.
  const fixed = (await mintToken(CUSTOMER)).token;
  await page3.evaluate((token) => window.TryOn.configure({ token }), fixed);
  const historyCall = () => apiCalls.filter((c) => c.label === "token" && c.url.startsWith(`${API_BASE}/api/shoppers/me/generations`)).at(-1);
  await page3.getByTestId("try-on-button").nth(1).click();
  await page3.getByTestId("open-history").click();
  await page3.getByTestId("history-item").first().waitFor();
  assert.equal(historyCall().headers.authorization, `Bearer ${fixed}`, "TryOn.configure({ token }) is used as given");
  await shot(page3, "history-token-es");
  await page3.keyboard.press("Escape");

  // TryOn.configure({ getToken }): the page's own function replaces the session URL.
  const fromFunction = (await mintToken(CUSTOMER)).token;
  await page3.evaluate((token) => window.TryOn.configure({ token: "", getToken: async () => token }), fromFunction);
  await tokenButton.click();
  await page3.getByTestId("open-history").click();
  await page3.getByTestId("history-item").first().waitFor();
  assert.equal(historyCall().headers.authorization, `Bearer ${fromFunction}`, "TryOn.configure({ getToken }) is asked for the token");
  assert.equal(sessionRequests.length, 2, "the session URL is not asked again");
  await page3.keyboard.press("Escape");

  // TryOn.addLanguage: a partial dictionary, whose missing sentences stay English.
  await page3.evaluate(() => {
    window.TryOn.addLanguage("fr", { pickTitle: "Ajoutez votre photo" });
    window.TryOn.configure({ lang: "fr" });
  });
  await page3.getByTestId("try-on-button").nth(1).click();
  await page3.getByTestId("picker").waitFor();
  assert.equal(await page3.getByTestId("dialog").getAttribute("lang"), "fr");
  assert.equal((await page3.getByTestId("title").textContent()).trim(), "Ajoutez votre photo");
  assert.equal((await page3.getByTestId("open-history").textContent()).trim(), "My previous results", "a missing sentence falls back to English");

  // The polling fallback: where the event stream is unavailable (a proxy answering 404
  // here), the widget reads GET /api/jobs/{id} until the job ends.
  const streamsUrl = /\/api\/jobs\/[^/]+\/events$/;
  await page3.route(streamsUrl, (route) => {
    const cors = { "access-control-allow-origin": SHOP_ORIGIN, "access-control-allow-headers": "authorization, accept", "access-control-allow-methods": "GET" };
    if (route.request().method() === "OPTIONS") return route.fulfill({ status: 204, headers: cors });
    return route.fulfill({ status: 404, headers: { ...cors, "content-type": "application/json" }, body: JSON.stringify({ error: { code: "not_found", message: "no stream here" } }) });
  });
  page3.expectHttp = (r) => r.status() === 404 && streamsUrl.test(r.url());
  const callsBefore = apiCalls.length;
  await page3.getByTestId("file-input").setInputFiles(PERSON_IMAGE);
  await page3.getByTestId("result-image").or(page3.getByTestId("error-message")).first().waitFor({ timeout: 200000 });
  assert.equal(await page3.getByTestId("error-message").count(), 0, "a result, not an error, without the stream");
  page3.expectHttp = () => false;
  const polled = apiCalls.slice(callsBefore).filter((c) => c.method === "GET" && /\/api\/jobs\/[^/]+$/.test(c.url));
  assert.ok(apiCalls.slice(callsBefore).some((c) => streamsUrl.test(c.url)), "the stream was tried first");
  assert.ok(polled.length >= 1, `then the job was polled: ${apiCalls.slice(callsBefore).map((c) => `${c.method} ${c.url}`)}`);
  await shot(page3, "result-polled-fr");
  await tokenContext.close();

  assert.deepEqual(problems, [], "no dialogs, console errors, CSP violations or unexpected HTTP errors");
  console.log(`widget ok; ${apiCalls.length} API calls; screenshots in ${ARTIFACTS}`);
} finally {
  await browser.close();
}
