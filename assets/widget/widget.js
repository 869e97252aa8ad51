/*! Try-on widget: a virtual try-on dialog for shop pages. Embed API: assets/widget/README.md */
// Plain DOM, no framework, no build step. It runs on pages we do not control, so:
// everything lives in a Shadow DOM (the shop's CSS cannot reach in, ours cannot leak
// out), text from anywhere is set with textContent, and nothing needs 'unsafe-inline'
// or 'unsafe-eval' (styles go through a constructable stylesheet).
(() => {
  "use strict";
  if (window.TryOn && window.TryOn.version) return; // the tag is on the page twice: keep the first

  const VERSION = "1.0.0";
  const ONBOARDING_KEY = "tryon_onboarding_done";
  const SHOPPER_KEY = "tryon_shopper_id";
  const ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/webp"];
  const MAX_FILE_BYTES = 20 * 1024 * 1024; // refused before decoding: a phone would choke on more
  const MAX_SIDE = 1024; // the model gains nothing from more, and the upload stays ~200 KB
  const JPEG_QUALITY = 0.85;
  const POLL_MS = 1500;
  const GIVE_UP_MS = 3 * 60 * 1000;
  const STREAM_IDLE_MS = 25000; // the server sends keep-alives; silence this long means a buffering proxy
  const FINAL = ["done", "error", "canceled"];

  // ---------- strings ----------

  // Every sentence a shopper can see. A language missing a key falls back to English,
  // so TryOn.addLanguage() can add a language one string at a time.
  const STRINGS = {
    en: {
      close: "Close",
      onboardingTitle: "Try it on",
      onboardingIntro: "See how this looks on you with a photo of yourself. Before you start:",
      onboardingSend: "Your photo is sent to the shop's try-on provider, only to create the image.",
      onboardingKeep: "The shop keeps the result according to its privacy policy.",
      onboardingTip: "Best results: one person, from the front, upper body visible, good light.",
      privacy: "Read the shop's privacy policy",
      consent: "I agree that my photo is used to create the try-on image.",
      consentHint: "Tick the box to continue.",
      continue: "Continue",
      pickTitle: "Add your photo",
      pickHint: "A photo of you from the front, in good light (JPEG, PNG or WebP).",
      trying: "Trying on: {name}",
      thisItem: "this item",
      choosePhoto: "Choose a photo",
      takePhoto: "Take a photo",
      progressTitle: "Creating your image",
      stageUpload: "Uploading your photo…",
      stageQueued: "Waiting for your turn…",
      stageQueuedAt: "Waiting for your turn… ({n} ahead of you)",
      stageGenerating: "Creating your image…",
      elapsed: "{time} · this usually takes less than a minute",
      cancel: "Cancel",
      resultTitle: "Your try-on",
      resultAlt: "You wearing {name}",
      anotherGarment: "Try another garment",
      anotherPhoto: "Try another photo",
      history: "My previous results",
      historyTitle: "Previous results",
      historyLoading: "Loading your results…",
      historyEmpty: "You have no results yet.",
      historyItem: "Result from {date}",
      back: "Back",
      errorTitle: "Something went wrong",
      tryAgain: "Try again",
      choosePhotoAgain: "Choose another photo",
      waitSeconds: "Please try again in a few seconds.",
      waitMinute: "Please wait a minute and try again.",
      waitMinutes: "Please wait a few minutes and try again.",
      waitLater: "Please try again later.",
      e_setup: "Try-on is not set up for this page.",
      e_unavailable: "Try-on is not available right now. Please try again later.",
      e_busy: "Many people are trying things on right now.",
      e_shopperRate: "You have made several try-ons in a short time.",
      e_daily: "You have reached today's limit of try-ons. Please come back tomorrow.",
      e_network: "We couldn't connect. Check your internet connection and try again.",
      e_offline: "You seem to be offline. Check your connection and try again.",
      e_server: "Something went wrong on our side. Please try again.",
      e_down: "Try-on is temporarily unavailable. Please try again in a few minutes.",
      e_timeout: "This is taking longer than expected. Please try again.",
      e_expired: "Your session has expired. Please reload the page and try again.",
      e_lost: "We lost track of this try-on. Please try again.",
      e_photoFormat: "This photo format isn't supported. Please choose a JPEG, PNG or WebP photo.",
      e_photoTooBig: "This photo is larger than 20 MB. Please choose a smaller one.",
      e_photoLarge: "This photo is too large. Please choose a smaller one.",
      e_photoUnreadable: "We couldn't open this photo. Please choose another one.",
      e_photoRejected: "We couldn't use this photo. Try a clear, well-lit photo of one person, from the front.",
      e_failed: "We couldn't create the image with this photo. Please try another photo.",
      e_garment: "This item can't be tried on right now.",
      e_canceled: "This try-on was canceled.",
      e_resultImage: "We couldn't load the image. Please try again.",
      e_unknown: "Something went wrong. Please try again.",
    },
    es: {
      close: "Cerrar",
      onboardingTitle: "Pruébatelo",
      onboardingIntro: "Mira cómo te queda con una foto tuya. Antes de empezar:",
      onboardingSend: "Tu foto se envía al proveedor de pruebas virtuales de la tienda, solo para crear la imagen.",
      onboardingKeep: "La tienda guarda el resultado según su política de privacidad.",
      onboardingTip: "Para un buen resultado: una sola persona, de frente, con el torso visible y buena luz.",
      privacy: "Leer la política de privacidad de la tienda",
      consent: "Acepto que se use mi foto para crear la imagen de prueba.",
      consentHint: "Marca la casilla para continuar.",
      continue: "Continuar",
      pickTitle: "Añade tu foto",
      pickHint: "Una foto tuya de frente y con buena luz (JPEG, PNG o WebP).",
      trying: "Probándote: {name}",
      thisItem: "esta prenda",
      choosePhoto: "Elegir una foto",
      takePhoto: "Hacer una foto",
      progressTitle: "Creando tu imagen",
      stageUpload: "Subiendo tu foto…",
      stageQueued: "Esperando tu turno…",
      stageQueuedAt: "Esperando tu turno… ({n} por delante)",
      stageGenerating: "Creando tu imagen…",
      elapsed: "{time} · suele tardar menos de un minuto",
      cancel: "Cancelar",
      resultTitle: "Tu prueba",
      resultAlt: "Tú con {name}",
      anotherGarment: "Probar otra prenda",
      anotherPhoto: "Probar con otra foto",
      history: "Mis resultados anteriores",
      historyTitle: "Resultados anteriores",
      historyLoading: "Cargando tus resultados…",
      historyEmpty: "Todavía no tienes resultados.",
      historyItem: "Resultado del {date}",
      back: "Volver",
      errorTitle: "Algo ha fallado",
      tryAgain: "Reintentar",
      choosePhotoAgain: "Elegir otra foto",
      waitSeconds: "Inténtalo de nuevo en unos segundos.",
      waitMinute: "Espera un minuto y vuelve a intentarlo.",
      waitMinutes: "Espera unos minutos y vuelve a intentarlo.",
      waitLater: "Inténtalo de nuevo más tarde.",
      e_setup: "La prueba virtual no está configurada para esta página.",
      e_unavailable: "La prueba virtual no está disponible en este momento. Inténtalo de nuevo más tarde.",
      e_busy: "Mucha gente se está probando prendas ahora mismo.",
      e_shopperRate: "Has hecho varias pruebas en poco tiempo.",
      e_daily: "Has llegado al límite de pruebas de hoy. Vuelve mañana.",
      e_network: "No hemos podido conectar. Revisa tu conexión a internet y vuelve a intentarlo.",
      e_offline: "Parece que no tienes conexión. Revísala y vuelve a intentarlo.",
      e_server: "Algo ha fallado por nuestra parte. Vuelve a intentarlo.",
      e_down: "La prueba virtual no está disponible temporalmente. Inténtalo de nuevo en unos minutos.",
      e_timeout: "Está tardando más de lo normal. Vuelve a intentarlo.",
      e_expired: "Tu sesión ha caducado. Recarga la página y vuelve a intentarlo.",
      e_lost: "Hemos perdido el rastro de esta prueba. Vuelve a intentarlo.",
      e_photoFormat: "Este formato de foto no es compatible. Elige una foto JPEG, PNG o WebP.",
      e_photoTooBig: "Esta foto ocupa más de 20 MB. Elige una más pequeña.",
      e_photoLarge: "Esta foto es demasiado grande. Elige una más pequeña.",
      e_photoUnreadable: "No hemos podido abrir esta foto. Elige otra.",
      e_photoRejected: "No hemos podido usar esta foto. Prueba con una foto clara y bien iluminada de una sola persona, de frente.",
      e_failed: "No hemos podido crear la imagen con esta foto. Prueba con otra.",
      e_garment: "Ahora mismo no se puede probar esta prenda.",
      e_canceled: "Se ha cancelado esta prueba.",
      e_resultImage: "No hemos podido cargar la imagen. Vuelve a intentarlo.",
      e_unknown: "Algo ha fallado. Vuelve a intentarlo.",
    },
  };

  // API error codes (see the API contract) → the sentence a shopper reads. The codes
  // themselves are never shown: a shopper cannot act on "quota_exceeded", and a shop
  // would rather not reveal its quota.
  const ERROR_KINDS = {
    malformed_json: "server", idempotency_key_reused: "server",
    missing_shopper_id: "setup", missing_api_key: "setup", invalid_api_key: "setup",
    invalid_widget_token: "setup", origin_not_allowed: "setup", secret_key_required: "setup",
    widget_token_expired: "expired", client_inactive: "unavailable", quota_exceeded: "unavailable",
    not_found: "lost", payload_too_large: "photoLarge", image_too_large: "photoLarge",
    invalid_image: "photoUnreadable", upstream_rejected_input: "photoRejected", invalid_garments: "garment",
    rate_limited: "busy", too_many_concurrent: "busy", widget_rate_limited: "busy",
    upstream_busy: "busy", idempotency_in_progress: "busy",
    shopper_rate_limited: "shopperRate", shopper_daily_limit: "daily",
    upstream_error: "server", upstream_malformed_response: "server",
    service_unavailable: "down", upstream_timeout: "timeout",
  };
  const WAIT_KINDS = ["busy", "shopperRate"]; // their sentence is followed by how long to wait
  const PHOTO_KINDS = ["photoFormat", "photoTooBig", "photoLarge", "photoUnreadable", "photoRejected", "failed"];
  const FINAL_KINDS = ["setup", "unavailable", "daily", "garment", "expired"]; // retrying cannot help

  // ---------- settings ----------

  const script = document.currentScript ||
    document.querySelector("script[data-key][src*='widget'], script[data-session-url][src*='widget']");
  const attr = (name) => (script && script.getAttribute(name)) || "";
  const settings = {
    api: trimSlash(attr("data-api") || originOf(script && script.src) || location.origin),
    key: attr("data-key"),
    token: "",
    getToken: null,
    sessionUrl: attr("data-session-url"),
    lang: attr("data-lang"),
    model: attr("data-model") || "fal-virtual-try-on",
    privacyUrl: attr("data-privacy-url"),
  };

  function originOf(url) {
    try { return url ? new URL(url, location.href).origin : ""; } catch { return ""; }
  }
  function trimSlash(url) { return String(url).replace(/\/+$/, ""); }

  function language() {
    const wanted = (settings.lang || navigator.language || "en").toLowerCase().split("-")[0];
    return STRINGS[wanted] ? wanted : "en";
  }

  function t(key, vars) {
    const text = STRINGS[language()][key] || STRINGS.en[key] || "";
    return text.replace(/\{(\w+)\}/g, (_, name) => (vars && vars[name] != null ? vars[name] : ""));
  }

  // ---------- storage ----------

  // localStorage throws in some private modes and sandboxed frames; the widget then
  // still works, it just forgets between visits.
  const memory = {};
  const storage = {
    get(key) { try { return localStorage.getItem(key) ?? memory[key] ?? null; } catch { return memory[key] ?? null; } },
    set(key, value) { memory[key] = value; try { localStorage.setItem(key, value); } catch { /* memory only */ } },
  };

  const BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  function randomBase62(length) {
    let out = "";
    while (out.length < length) {
      for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
        // 248 = 4 × 62: dropping bytes above it keeps every character equally likely.
        if (byte < 248 && out.length < length) out += BASE62[byte % 62];
      }
    }
    return out;
  }

  function shopperId() {
    let id = storage.get(SHOPPER_KEY);
    if (!/^anon_[A-Za-z0-9]{22,64}$/.test(id || "")) {
      id = `anon_${randomBase62(22)}`;
      storage.set(SHOPPER_KEY, id);
    }
    return id;
  }

  // ---------- talking to the API ----------

  class TryOnError extends Error {
    constructor(code, { status = 0, retryAfter = null } = {}) {
      super(code);
      this.code = code;
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  let cachedToken = "";
  let pendingToken = null;
  let corsWorked = false; // once one API call passed CORS, a later failed fetch is the network

  function canRefreshToken() { return Boolean(settings.getToken || settings.sessionUrl); }
  function hasCredentials() { return Boolean(settings.token || canRefreshToken() || settings.key); }

  async function widgetToken(refresh) {
    if (!refresh && cachedToken) return cachedToken;
    if (!canRefreshToken()) return settings.token;
    pendingToken = pendingToken || fetchToken().finally(() => { pendingToken = null; });
    return (cachedToken = await pendingToken);
  }

  // The shop's own back end mints the token (with its secret key) for its logged-in
  // shopper; it is same-origin, so its session cookie identifies the shopper.
  async function fetchToken() {
    let token;
    try {
      if (settings.getToken) token = await settings.getToken();
      else {
        const response = await fetch(settings.sessionUrl, {
          method: "POST", credentials: "same-origin",
          headers: { accept: "application/json", "content-type": "application/json" }, body: "{}",
        });
        if (!response.ok) throw new TryOnError(response.status >= 500 ? "session_failed" : "session_refused", { status: response.status });
        token = (await response.json()).token;
      }
    } catch (error) {
      throw error instanceof TryOnError ? error : new TryOnError("session_unreachable");
    }
    if (typeof token !== "string" || !token) throw new TryOnError("session_refused");
    return token;
  }

  async function authHeaders(refresh) {
    if (settings.token || canRefreshToken()) return { authorization: `Bearer ${await widgetToken(refresh)}` };
    return { "x-api-key": settings.key, "x-tryon-shopper": shopperId() };
  }

  // One request to the API. Answers the parsed JSON (or the Response with `raw`),
  // throws TryOnError. A widget token that expired is refreshed once and the call repeated.
  async function callApi(method, path, { body, signal, headers = {}, raw = false } = {}) {
    for (let attempt = 0; ; attempt++) {
      const init = {
        method, signal, mode: "cors", credentials: "omit", cache: "no-store",
        headers: { accept: "application/json", ...headers, ...(await authHeaders(attempt > 0)) },
      };
      if (body !== undefined) { init.body = body; init.headers["content-type"] = "application/json"; }
      let response;
      try {
        response = await fetch(settings.api + path, init);
      } catch (error) {
        if (signal && signal.aborted) throw error;
        throw new TryOnError(await diagnoseFailedFetch());
      }
      corsWorked = true;
      if (response.ok) return raw ? response : response.status === 204 ? null : response.json();
      const error = await errorFrom(response);
      if (error.code === "widget_token_expired" && attempt === 0 && canRefreshToken()) continue;
      throw error;
    }
  }

  async function errorFrom(response) {
    let code = "";
    try { code = ((await response.json()).error || {}).code || ""; } catch { /* not our JSON (a proxy's page) */ }
    // Retry-After is readable only if the API lists it in Access-Control-Expose-Headers.
    const seconds = Number(response.headers.get("retry-after"));
    return new TryOnError(code || `http_${response.status}`, {
      status: response.status, retryAfter: Number.isFinite(seconds) && seconds > 0 ? seconds : null,
    });
  }

  // A refused origin gets no CORS headers, so the browser reports it exactly like a
  // dropped connection (a phone losing signal mid-upload, say). Tell them apart with two
  // small questions: does a CORS request from this page get any answer (then the origin
  // is allowed and the connection failed), and does the API answer at all (then what
  // failed is CORS: this page's origin is not allowed)?
  async function diagnoseFailedFetch() {
    if (navigator.onLine === false) return "offline";
    if (corsWorked) return "network";
    const probe = { cache: "no-store", credentials: "omit", signal: timeoutSignal(8000) };
    try {
      await fetch(`${settings.api}/api/shoppers/me/generations?limit=1`, { ...probe, mode: "cors", headers: await authHeaders(false) });
      corsWorked = true;
      return "network";
    } catch { /* refused or unreachable: ask without CORS */ }
    try {
      await fetch(`${settings.api}/health`, { ...probe, mode: "no-cors", signal: timeoutSignal(8000) });
      return "origin_refused";
    } catch {
      return "network";
    }
  }

  function timeoutSignal(ms) {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), ms);
    return controller.signal;
  }

  // ---------- following a job ----------

  // Server-sent events, parsed by hand because EventSource cannot send our headers.
  // Lines are `field: value`; a blank line ends an event; lines starting with ":" are
  // keep-alives. Line ends may be \n, \r\n or \r, and a chunk may end mid-line.
  function sseParser(onEvent) {
    let buffer = "";
    let event = { id: "", type: "", data: [] };
    return (chunk) => {
      buffer += chunk;
      const end = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length; // "\r" may be half of "\r\n"
      const lines = buffer.slice(0, end).split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(end);
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) onEvent({ id: event.id, type: event.type || "message", data: event.data.join("\n") });
          event = { id: event.id, type: "", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data.push(value);
        else if (field === "event") event.type = value;
        else if (field === "id") event.id = value;
      }
    };
  }

  // Reads the job's event stream until a final state. Answers the final job, or null
  // when the stream is unavailable or ends early (the caller then polls).
  async function streamJob(jobId, run, onJob) {
    const idle = new AbortController();
    const stopIdle = () => idle.abort();
    run.controller.signal.addEventListener("abort", stopIdle);
    let timer = setTimeout(stopIdle, STREAM_IDLE_MS);
    let final = null;
    try {
      const response = await callApi("GET", `/api/jobs/${encodeURIComponent(jobId)}/events`, {
        signal: idle.signal, raw: true, headers: { accept: "text/event-stream" },
      });
      if (!response.body || !/text\/event-stream/.test(response.headers.get("content-type") || "")) return null;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      const parse = sseParser((event) => {
        let job;
        try { job = JSON.parse(event.data); } catch { return; }
        if (!job || typeof job !== "object") return;
        if (!job.status && FINAL.includes(event.type)) job.status = event.type;
        onJob(job);
        if (FINAL.includes(job.status)) final = job;
      });
      while (!final) {
        const { value, done } = await reader.read();
        if (done) break;
        clearTimeout(timer);
        timer = setTimeout(stopIdle, STREAM_IDLE_MS);
        parse(decoder.decode(value, { stream: true }));
      }
      if (final) reader.cancel().catch(() => {});
      return final;
    } catch (error) {
      if (run.stopped) throw error;
      return null; // 404/405 (no stream here), a network drop, an idle proxy: poll instead
    } finally {
      clearTimeout(timer);
      run.controller.signal.removeEventListener("abort", stopIdle);
    }
  }

  async function pollJob(jobId, run, onJob) {
    let failures = 0;
    for (;;) {
      await sleep(POLL_MS, run.controller.signal);
      try {
        const job = await callApi("GET", `/api/jobs/${encodeURIComponent(jobId)}`, { signal: run.controller.signal });
        failures = 0;
        onJob(job);
        if (FINAL.includes(job.status)) return job;
      } catch (error) {
        // A phone switching networks, a 5xx, or a job not yet visible everywhere
        // (the job store is eventually consistent): worth a few more tries.
        const transient = !(error instanceof TryOnError) || ["network", "offline", "not_found"].includes(error.code) || error.status >= 500;
        if (run.stopped || !transient || ++failures >= 4) throw error;
      }
    }
  }

  function sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => { clearTimeout(timer); reject(new DOMException("stopped", "AbortError")); }, { once: true });
    });
  }

  // ---------- the photo ----------

  // Checks and shrinks the shopper's photo in the browser: a phone photo is 3–12 MB,
  // the model needs 1024 px, and a small upload is what makes this fast on mobile data.
  async function preparePhoto(file) {
    const type = (file.type || typeFromName(file.name)).toLowerCase().replace("image/jpg", "image/jpeg");
    if (!ACCEPTED_TYPES.includes(type)) throw new TryOnError("photo_format"); // HEIC, GIF, PDF…
    if (file.size > MAX_FILE_BYTES) throw new TryOnError("photo_too_big");
    const image = await decodePhoto(file);
    try {
      const scale = Math.min(1, MAX_SIDE / Math.max(image.width, image.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(image.width * scale));
      canvas.height = Math.max(1, Math.round(image.height * scale));
      const context = canvas.getContext("2d");
      context.fillStyle = "#fff"; // a transparent PNG would turn black in a JPEG
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(image.source, 0, 0, canvas.width, canvas.height);
      const dataUri = canvas.toDataURL("image/jpeg", JPEG_QUALITY);
      if (!dataUri.startsWith("data:image/jpeg")) throw new TryOnError("photo_unreadable");
      return { dataUri, idempotencyKey: randomBase62(32) };
    } catch (error) {
      throw error instanceof TryOnError ? error : new TryOnError("photo_unreadable");
    } finally {
      image.release();
    }
  }

  function typeFromName(name) {
    const extension = String(name || "").toLowerCase().split(".").pop();
    return { jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp" }[extension] || "";
  }

  async function decodePhoto(file) {
    // createImageBitmap needs no object URL (so no `img-src blob:` in the shop's CSP)
    // and applies the EXIF rotation of phone photos.
    if (window.createImageBitmap) {
      try {
        const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
        return { source: bitmap, width: bitmap.width, height: bitmap.height, release: () => bitmap.close() };
      } catch { /* older Safari: try an <img> below */ }
    }
    const url = URL.createObjectURL(file);
    try {
      const img = new Image();
      img.src = url;
      await img.decode();
      return { source: img, width: img.naturalWidth, height: img.naturalHeight, release: () => URL.revokeObjectURL(url) };
    } catch {
      URL.revokeObjectURL(url);
      throw new TryOnError("photo_unreadable");
    }
  }

  // ---------- DOM helpers ----------

  // Builds an element. Strings become text nodes, never HTML.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "on") for (const [type, handler] of Object.entries(value)) node.addEventListener(type, handler);
      else if (name === "testid") node.dataset.testid = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
    return node;
  }

  function button(text, testid, onClick, className = "secondary") {
    return el("button", { type: "button", class: className, testid, on: { click: onClick } }, text);
  }

  // ---------- the dialog ----------

  const ui = { host: null, root: null, dialog: null, title: null, body: null };
  const state = {
    isOpen: false, opener: null, garment: "", name: "", model: "",
    view: "", photo: null, run: null, result: null, ticker: 0, scrollLock: null,
  };

  function ensureDom() {
    if (ui.host) return;
    // An unknown element name: the shop's `div { … }` rules cannot match the host.
    ui.host = el("tryon-widget", { testid: "tryon-widget", hidden: true });
    ui.root = ui.host.attachShadow({ mode: "open" });
    applyStyles(ui.root);
    ui.title = el("h2", { id: "tryon-title", class: "title", testid: "title", tabindex: "-1" });
    ui.body = el("div", { class: "body" });
    ui.dialog = el("div", {
      class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "tryon-title", testid: "dialog",
      tabindex: "-1", // a click on plain text inside keeps focus in the dialog
    },
    el("div", { class: "header" }, ui.title,
      el("button", { type: "button", class: "close", testid: "close", on: { click: close } }, "×")),
    ui.body);
    ui.root.append(el("div", { class: "backdrop", testid: "backdrop", on: { click: close } }), ui.dialog);
    document.body.append(ui.host);
    document.addEventListener("focusin", keepFocusInside);
    document.addEventListener("keydown", onKey, true);
  }

  function applyStyles(root) {
    // Constructable stylesheets are not "inline styles" to CSP, so a shop whose policy
    // forbids 'unsafe-inline' still gets them; a <style> element is for older browsers.
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch {
      root.append(el("style", {}, CSS));
    }
  }

  function showDialog() {
    ui.dialog.setAttribute("lang", language());
    ui.dialog.querySelector(".close").setAttribute("aria-label", t("close"));
    if (state.isOpen) return;
    state.isOpen = true;
    ui.host.hidden = false;
    const page = document.documentElement;
    state.scrollLock = page.style.overflow;
    page.style.overflow = "hidden"; // the page behind must not scroll under a full-screen sheet
    document.dispatchEvent(new CustomEvent("tryon:open", { detail: { garment: state.garment } }));
  }

  function close() {
    if (!state.isOpen) return;
    state.isOpen = false;
    ui.host.hidden = true;
    document.documentElement.style.overflow = state.scrollLock || "";
    // A try-on in progress goes on: reopening the same garment shows its progress or result.
    const opener = state.opener;
    state.opener = null;
    if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
    document.dispatchEvent(new CustomEvent("tryon:close"));
  }

  function focusables() {
    return [...ui.dialog.querySelectorAll("button, a[href], input, select, textarea, [tabindex]")]
      .filter((node) => !node.disabled && node.getAttribute("tabindex") !== "-1" && node.getClientRects().length > 0);
  }

  // Tab and Shift+Tab cycle inside the dialog; Escape closes it. Listened for on the
  // document, so it works wherever focus is (after a click on the backdrop, say).
  function onKey(event) {
    if (!state.isOpen) return;
    if (event.key === "Escape") { event.preventDefault(); close(); return; }
    if (event.key !== "Tab") return;
    const items = focusables();
    if (!items.length) { event.preventDefault(); return; }
    const active = ui.root.activeElement;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && (active === first || !items.includes(active))) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && (active === last || !items.includes(active))) { event.preventDefault(); first.focus(); }
  }

  // Focus that lands on the page behind (a click, a screen reader) comes back in.
  function keepFocusInside(event) {
    if (state.isOpen && event.target !== ui.host) focusView();
  }

  function focusView() {
    const target = ui.body.querySelector("[data-autofocus]") || focusables()[1] || ui.title;
    if (target) target.focus();
  }

  // Replaces the dialog's content with one view.
  function render(view, titleKey, ...nodes) {
    state.view = view;
    clearInterval(state.ticker);
    ui.title.textContent = t(titleKey);
    ui.body.replaceChildren(el("div", { class: `view view-${view}`, testid: view }, ...nodes));
    if (state.isOpen) focusView();
  }

  // ---------- views ----------

  function startView() {
    if (!hasCredentials()) return showError(new TryOnError("no_credentials"));
    if (storage.get(ONBOARDING_KEY) === "1") return showPicker();
    return showOnboarding();
  }

  function showOnboarding() {
    const consent = el("input", { type: "checkbox", id: "tryon-consent", testid: "consent", "aria-describedby": "tryon-consent-hint", "data-autofocus": true });
    const hint = el("p", { id: "tryon-consent-hint", class: "hint", testid: "consent-hint" }, t("consentHint"));
    const proceed = el("button", { type: "button", class: "primary", testid: "continue", disabled: true, on: { click: () => {
      if (!consent.checked) return;
      storage.set(ONBOARDING_KEY, "1");
      showPicker();
    } } }, t("continue"));
    consent.addEventListener("change", () => { proceed.disabled = !consent.checked; hint.hidden = consent.checked; });
    render("onboarding", "onboardingTitle",
      el("p", {}, t("onboardingIntro")),
      el("ul", { class: "points" },
        el("li", {}, t("onboardingSend")), el("li", {}, t("onboardingKeep")), el("li", {}, t("onboardingTip"))),
      settings.privacyUrl ? el("p", {}, el("a", { href: settings.privacyUrl, target: "_blank", rel: "noopener", testid: "privacy-link" }, t("privacy"))) : null,
      el("label", { class: "consent", for: "tryon-consent" }, consent, el("span", {}, t("consent"))),
      hint,
      el("div", { class: "actions" }, proceed));
  }

  function garmentLine() {
    return el("div", { class: "garment" },
      el("img", { src: state.garment, alt: "", class: "garment-image", on: { error: (event) => event.target.remove() } }),
      el("p", { testid: "garment-name" }, t("trying", { name: state.name || t("thisItem") })));
  }

  function showPicker() {
    const fileInput = photoInput("file-input", null);
    const cameraInput = photoInput("camera-input", "user");
    const onPhone = window.matchMedia && matchMedia("(pointer: coarse)").matches;
    const choose = el("button", { type: "button", class: "primary", testid: "choose-photo", "data-autofocus": true, on: { click: () => fileInput.click() } }, t("choosePhoto"));
    render("picker", "pickTitle",
      garmentLine(),
      el("p", { class: "hint" }, t("pickHint")),
      el("div", { class: "actions stacked" },
        choose,
        // `capture` opens the front camera on phones; desktops have no use for it.
        onPhone ? button(t("takePhoto"), "take-photo", () => cameraInput.click()) : null,
        button(t("history"), "open-history", showHistory, "link")),
      fileInput, cameraInput);
  }

  function photoInput(testid, capture) {
    const input = el("input", {
      // Visually hidden rather than display:none, which some iOS versions refuse to .click().
      type: "file", accept: "image/*", capture, class: "visually-hidden", tabindex: "-1",
      "aria-label": t(capture ? "takePhoto" : "choosePhoto"), testid,
    });
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      input.value = ""; // choosing the same file again must fire `change` again
      if (file) startTryOn(file, null);
    });
    return input;
  }

  function showProgress() {
    const status = el("p", { class: "status", testid: "status", role: "status", "aria-live": "polite" }, t("stageUpload"));
    const elapsed = el("p", { class: "hint", testid: "elapsed" });
    render("progress", "progressTitle",
      garmentLine(),
      el("div", { class: "bar", role: "progressbar", "aria-label": t("progressTitle"), testid: "progress-bar" }, el("span", {})),
      status, elapsed,
      el("div", { class: "actions" }, el("button", { type: "button", class: "secondary", testid: "cancel", "data-autofocus": true, on: { click: cancelRun } }, t("cancel"))));
    const started = state.run ? state.run.started : Date.now();
    const tick = () => {
      const seconds = Math.floor((Date.now() - started) / 1000);
      elapsed.textContent = t("elapsed", { time: `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}` });
    };
    tick();
    state.ticker = setInterval(tick, 1000);
    return status;
  }

  function stageText(job) {
    if (job.status === "processing") return t("stageGenerating");
    const ahead = Number(job.queue_position);
    return ahead > 0 ? t("stageQueuedAt", { n: ahead }) : t("stageQueued");
  }

  function showResult(job) {
    state.result = job;
    const image = el("img", { src: job.image_url, alt: t("resultAlt", { name: state.name || t("thisItem") }), class: "result-image", testid: "result-image" });
    image.addEventListener("error", () => { if (state.view === "result") showError(new TryOnError("result_image")); }, { once: true });
    render("result", "resultTitle",
      image,
      el("div", { class: "actions stacked" },
        el("button", { type: "button", class: "primary", testid: "another-garment", "data-autofocus": true, on: { click: close } }, t("anotherGarment")),
        button(t("anotherPhoto"), "another-photo", showPicker),
        button(t("history"), "open-history", showHistory, "link")));
  }

  async function showHistory() {
    const back = () => (state.result && state.result.garment === state.garment ? showResult(state.result) : showPicker());
    const list = el("div", { class: "grid", testid: "history-list", "aria-busy": "true" });
    const note = el("p", { class: "hint", role: "status" }, t("historyLoading"));
    render("history", "historyTitle", note, list,
      el("div", { class: "actions" }, el("button", { type: "button", class: "secondary", testid: "back", "data-autofocus": true, on: { click: back } }, t("back"))));
    let page;
    try {
      page = await callApi("GET", "/api/shoppers/me/generations?limit=12", { signal: timeoutSignal(30000) });
    } catch (error) {
      if (state.view === "history") showError(asTryOnError(error));
      return;
    }
    if (state.view !== "history") return; // the shopper moved on meanwhile
    const results = (page && Array.isArray(page.data) ? page.data : [])
      .filter((item) => item && item.image_url && !["error", "failed", "canceled"].includes(item.status));
    list.removeAttribute("aria-busy");
    if (results.length) note.remove();
    else { note.textContent = t("historyEmpty"); note.dataset.testid = "history-empty"; }
    list.append(...results.map((item) => {
      const label = t("historyItem", { date: formatDate(item.created_at) });
      return el("button", { type: "button", class: "thumb", testid: "history-item", "aria-label": label, on: { click: () => showEnlarged(item, label) } },
        el("img", { src: item.image_url, alt: "", loading: "lazy", testid: "history-thumb" }));
    }));
  }

  function showEnlarged(item, label) {
    render("history-view", "historyTitle",
      el("img", { src: item.image_url, alt: label, class: "result-image", testid: "history-image" }),
      el("div", { class: "actions" }, el("button", { type: "button", class: "secondary", testid: "back", "data-autofocus": true, on: { click: showHistory } }, t("back"))));
  }

  function formatDate(value) {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return "";
    try { return date.toLocaleDateString(language(), { day: "numeric", month: "long", year: "numeric" }); } catch { return date.toDateString(); }
  }

  function showError(error) {
    const kind = kindOf(error);
    const actions = [];
    if (!FINAL_KINDS.includes(kind)) {
      if (!PHOTO_KINDS.includes(kind) && state.photo) actions.push(button(t("tryAgain"), "retry", () => startTryOn(null, state.photo), "primary"));
      if (state.garment) actions.push(button(t("choosePhotoAgain"), "choose-another", showPicker, actions.length ? "secondary" : "primary"));
    }
    actions.push(button(t("close"), "error-close", close));
    actions[0].dataset.autofocus = "";
    render("error", "errorTitle",
      el("p", { class: "message", role: "alert", testid: "error-message" }, messageFor(error)),
      el("div", { class: "actions stacked" }, actions));
    // For the shop's analytics or support: the precise code, never shown to the shopper.
    document.dispatchEvent(new CustomEvent("tryon:error", { detail: { code: error.code, status: error.status } }));
  }

  // ---------- errors → sentences ----------

  const LOCAL_KINDS = {
    origin_refused: "setup", no_credentials: "setup", session_refused: "setup", session_failed: "server",
    session_unreachable: "network", network: "network", offline: "offline", timeout: "timeout",
    photo_format: "photoFormat", photo_too_big: "photoTooBig", photo_unreadable: "photoUnreadable",
    generation_failed: "failed", canceled: "canceled", result_image: "resultImage",
  };

  function kindOf(error) {
    const kind = LOCAL_KINDS[error.code] || ERROR_KINDS[error.code];
    if (kind) return kind;
    if (error.status === 429) return "busy";
    if (error.status >= 500) return "server";
    return "unknown";
  }

  function messageFor(error) {
    const kind = kindOf(error);
    const sentence = t(`e_${kind}`) || t("e_unknown");
    return WAIT_KINDS.includes(kind) ? `${sentence} ${waitSentence(error.retryAfter)}` : sentence;
  }

  function waitSentence(seconds) {
    if (seconds === null) return t("waitMinute");
    if (seconds <= 10) return t("waitSeconds");
    if (seconds <= 90) return t("waitMinute");
    if (seconds <= 600) return t("waitMinutes");
    return t("waitLater");
  }

  function asTryOnError(error) {
    return error instanceof TryOnError ? error : new TryOnError("unknown");
  }

  // The job's `error` may be a code or FAL's own words: only a known code gets its own sentence.
  function errorFromJob(job) {
    if (job.status === "canceled") return new TryOnError("canceled");
    const code = typeof job.error === "string" ? job.error : job.error && job.error.code;
    return new TryOnError(ERROR_KINDS[code] ? code : "generation_failed");
  }

  // ---------- one try-on, from photo to result ----------

  function stopRun(reason) {
    const run = state.run;
    if (!run) return;
    run.stopped = reason;
    run.controller.abort();
    clearTimeout(run.deadline);
    state.run = null;
    // Nobody will look at this result any more: cancel it, so it costs the shop nothing.
    if (run.jobId) callApi("DELETE", `/api/jobs/${encodeURIComponent(run.jobId)}`, { signal: timeoutSignal(10000) }).catch(() => {});
  }

  function cancelRun() {
    stopRun("canceled");
    showPicker();
  }

  // `file` is a new photo; `photo` an already prepared one (Try again).
  async function startTryOn(file, photo) {
    stopRun("superseded");
    const run = { controller: new AbortController(), started: Date.now(), jobId: "", stopped: "", garment: state.garment };
    state.run = run;
    run.deadline = setTimeout(() => { if (state.run === run) { stopRun("timeout"); showError(new TryOnError("timeout")); } }, GIVE_UP_MS);
    const status = showProgress();
    const onJob = (job) => { if (state.run === run && !FINAL.includes(job.status)) status.textContent = stageText(job); };
    try {
      state.photo = photo || (await preparePhoto(file));
      const job = await createJob(state.photo, run);
      run.jobId = job.id;
      onJob(job);
      const final = FINAL.includes(job.status) ? job
        : (await streamJob(job.id, run, onJob)) || (await pollJob(job.id, run, onJob));
      if (state.run !== run) return;
      state.run = null;
      clearTimeout(run.deadline);
      if (final.status !== "done" || !final.image_url) throw errorFromJob(final);
      showResult({ ...final, garment: run.garment });
      document.dispatchEvent(new CustomEvent("tryon:result", { detail: { jobId: final.id, imageUrl: final.image_url, garment: run.garment } }));
    } catch (error) {
      if (run.stopped) return; // canceled, timed out or replaced: that path has said what happens next
      state.run = null;
      clearTimeout(run.deadline);
      showError(asTryOnError(error));
    }
  }

  async function createJob(photo, run) {
    const body = JSON.stringify({ model: state.model, person_image_url: photo.dataUri, garment_image_urls: [state.garment] });
    try {
      // The same Idempotency-Key after a dropped connection replays the job the API may
      // already have created, instead of creating (and charging) a second one.
      const job = await callApi("POST", "/api/jobs", { body, signal: run.controller.signal, headers: { "idempotency-key": photo.idempotencyKey } });
      photo.idempotencyKey = randomBase62(32);
      return job;
    } catch (error) {
      if (error instanceof TryOnError && error.status) photo.idempotencyKey = randomBase62(32); // answered: a retry is a new request
      throw error;
    }
  }

  // ---------- styles ----------

  // `all: initial` on the host stops the page's inherited font, colour and spacing at
  // the shadow boundary. Custom properties still inherit, which is how a shop themes it.
  const CSS = `
:host{all:initial!important;position:fixed!important;inset:0!important;z-index:2147483647!important;display:block!important}
:host([hidden]){display:none!important}
*{box-sizing:border-box}
[hidden]{display:none!important}
.visually-hidden{position:absolute;width:1px;height:1px;opacity:0;overflow:hidden;clip:rect(0 0 0 0);pointer-events:none}
.backdrop{position:absolute;inset:0;background:rgba(0,0,0,.55)}
.dialog{--accent:var(--tryon-accent,#111);--on-accent:var(--tryon-on-accent,#fff);--focus:var(--tryon-focus,#1a73e8);
 position:absolute;left:50%;top:50%;transform:translate(-50%,-50%);width:min(440px,calc(100% - 32px));max-height:calc(100% - 32px);
 display:flex;flex-direction:column;background:#fff;color:#1b1b1b;border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.3);
 font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;text-align:start;overflow:hidden}
@media (max-width:600px){.dialog{left:0;top:0;transform:none;width:100%;height:100%;max-height:none;border-radius:0}}
.header{display:flex;align-items:center;gap:8px;padding:12px 12px 12px 20px;border-bottom:1px solid #eee}
.dialog:focus{outline:none}
.title{flex:1;margin:0;font-size:18px;font-weight:650;outline:none}
.close{width:44px;height:44px;border:0;border-radius:50%;background:transparent;color:inherit;font:28px/1 system-ui,sans-serif;cursor:pointer}
.close:hover{background:#f2f2f2}
.body{padding:20px;overflow:auto;flex:1;-webkit-overflow-scrolling:touch}
.view{display:flex;flex-direction:column;gap:14px}
p{margin:0}
.points{margin:0;padding-inline-start:20px;display:grid;gap:8px}
.hint{color:#595959;font-size:14px}
a{color:inherit}
.consent{display:flex;gap:12px;align-items:flex-start;padding:12px;border:1px solid #ddd;border-radius:10px;cursor:pointer}
.consent input{width:22px;height:22px;margin:1px 0 0;flex:none;accent-color:var(--accent)}
.actions{display:flex;gap:10px;flex-wrap:wrap}
.actions.stacked{flex-direction:column}
button{font:inherit;cursor:pointer}
.primary,.secondary{min-height:48px;padding:10px 18px;border-radius:10px;font-weight:600;flex:1}
.primary{background:var(--accent);color:var(--on-accent);border:2px solid var(--accent)}
.primary:disabled{opacity:.4;cursor:not-allowed}
.secondary{background:#fff;color:#1b1b1b;border:2px solid #c8c8c8}
.link{min-height:44px;background:none;border:0;color:inherit;text-decoration:underline;padding:8px}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.garment{display:flex;gap:12px;align-items:center}
.garment-image{width:56px;height:56px;object-fit:cover;border-radius:8px;background:#f3f3f3;flex:none}
.bar{height:6px;border-radius:3px;background:#ececec;overflow:hidden}
.bar span{display:block;width:40%;height:100%;background:var(--accent);border-radius:3px;animation:slide 1.4s ease-in-out infinite}
@keyframes slide{from{transform:translateX(-100%)}to{transform:translateX(250%)}}
@media (prefers-reduced-motion:reduce){.bar span{animation:none;width:100%;opacity:.5}}
.status{font-weight:600}
.message{font-size:17px}
.result-image{display:block;width:100%;max-height:max(180px,min(62vh,calc(100vh - 300px)));object-fit:contain;background:#f3f3f3;border-radius:12px}
.grid{display:grid;grid-template-columns:repeat(3,1fr);gap:8px}
.thumb{padding:0;border:0;border-radius:8px;overflow:hidden;background:#f3f3f3;aspect-ratio:3/4}
.thumb img{display:block;width:100%;height:100%;object-fit:cover}
`;
  // ---------- public API ----------

  function absoluteUrl(url) {
    try { return url ? new URL(String(url), document.baseURI).href : ""; } catch { return ""; }
  }

  function open(options) {
    const garment = absoluteUrl(options && options.garment);
    if (!garment) throw new TypeError("TryOn.open: `garment` must be the URL of the garment image");
    ensureDom();
    const model = options.model || settings.model;
    const active = document.activeElement;
    state.opener = options.opener || (active && active !== document.body && active !== ui.host ? active : null);
    state.name = options.name ? String(options.name) : "";
    // Reopening the same garment shows where the shopper left off; another garment starts over.
    const resume = garment === state.garment && model === state.model && ["progress", "result", "history", "history-view"].includes(state.view);
    if (!resume) {
      stopRun("superseded");
      state.garment = garment;
      state.model = model;
    }
    showDialog();
    if (resume) focusView();
    else startView();
  }

  function configure(options = {}) {
    for (const name of ["key", "token", "getToken", "sessionUrl", "lang", "model", "privacyUrl"]) {
      if (options[name] !== undefined) settings[name] = options[name];
    }
    if (options.api) settings.api = trimSlash(options.api);
    if (options.token !== undefined || options.getToken !== undefined || options.sessionUrl !== undefined) cachedToken = settings.token || "";
  }

  function addLanguage(code, strings) {
    STRINGS[String(code).toLowerCase()] = { ...STRINGS[String(code).toLowerCase()], ...strings };
  }

  // One listener for the whole page, so buttons added later (infinite scroll, quick
  // views) work without calling anything.
  document.addEventListener("click", (event) => {
    const trigger = event.target instanceof Element && event.target.closest("[data-tryon-garment]");
    if (!trigger) return;
    event.preventDefault();
    open({
      garment: trigger.getAttribute("data-tryon-garment"),
      name: trigger.getAttribute("data-tryon-name") || "",
      model: trigger.getAttribute("data-tryon-model") || "",
      opener: trigger,
    });
  });

  window.TryOn = Object.freeze({ version: VERSION, open, close, configure, addLanguage });
  document.dispatchEvent(new CustomEvent("tryon:ready"));

})();
