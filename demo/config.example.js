// Copy to demo/config.js (git-ignored) and fill in. A second file, e.g. demo/config-quota.js,
// is chosen with ?config=config-quota.js.
window.TRYON_DEMO = {
  api: "http://127.0.0.1:8787",            // the API's origin; the widget is loaded from {api}/widget.js
  key: "vto_pk_…",                          // a publishable key whose client allows this page's origin
  // lang: "es", model: "fal-virtual-try-on", sessionUrl: "/tryon/session" (all optional)
  garments: [
    { name: "Camisa de lino", price: "39,90 €", image: "http://127.0.0.1:8788/samples/garment.png" },
    { name: "Camiseta básica", price: "14,90 €", image: "http://127.0.0.1:8788/samples/garment.png" },
    { name: "Sudadera", price: "49,90 €", image: "http://127.0.0.1:8788/samples/garment.png" },
  ],
};
