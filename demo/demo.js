// The demo shop's only script. It loads its settings (demo/config.js, generated and
// git-ignored; or another file named by ?config=…), lists the products, and adds the
// widget's <script> tag for whichever API and key the settings name.
"use strict";

const CONFIG_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.js$/; // a file beside this page, nothing else

function configFile() {
  const requested = new URLSearchParams(location.search).get("config") || "config.js";
  return CONFIG_PATTERN.test(requested) ? requested : "config.js";
}

function loadScript(src, attributes = {}) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    for (const [name, value] of Object.entries(attributes)) script.setAttribute(name, value);
    script.src = src;
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new Error(`could not load ${src}`)));
    document.head.append(script);
  });
}

function notice(text) {
  const box = document.getElementById("demo-status");
  box.textContent = text;
  box.hidden = false;
}

function productCard(garment) {
  const item = document.createElement("li");
  item.className = "product";
  item.dataset.testid = "product";
  const image = document.createElement("img");
  image.src = garment.image;
  image.alt = garment.name;
  const name = document.createElement("h2");
  name.textContent = garment.name;
  const price = document.createElement("p");
  price.className = "price";
  price.textContent = garment.price;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "try-on";
  button.textContent = "Pruébatelo / Try it on";
  button.dataset.testid = "try-on-button";
  // All the widget needs: it listens for clicks on any [data-tryon-garment].
  button.dataset.tryonGarment = garment.image;
  button.dataset.tryonName = garment.name;
  item.append(image, name, price, button);
  return item;
}

async function main() {
  const file = configFile();
  try {
    await loadScript(file);
  } catch {
    notice(`Falta demo/${file}. Créalo a partir de demo/config.example.js. / demo/${file} is missing: copy demo/config.example.js.`);
    return;
  }
  const config = window.TRYON_DEMO || {};
  if (!config.api || !(config.key || config.sessionUrl) || !Array.isArray(config.garments)) {
    notice(`demo/${file} debe definir window.TRYON_DEMO = {api, key, garments}. / must define window.TRYON_DEMO = {api, key, garments}.`);
    return;
  }
  document.getElementById("products").append(...config.garments.map(productCard));
  const attributes = {};
  if (config.key) attributes["data-key"] = config.key;
  if (config.sessionUrl) attributes["data-session-url"] = config.sessionUrl;
  if (config.lang) attributes["data-lang"] = config.lang;
  if (config.model) attributes["data-model"] = config.model;
  await loadScript(`${config.api.replace(/\/+$/, "")}/widget.js`, attributes).catch(() => {
    notice(`No se pudo cargar ${config.api}/widget.js. / Could not load the widget from ${config.api}.`);
  });
}

main();
