// A tiny static file server for the demo shop (demo/), with no dependencies:
//   node scripts/demo-server.mjs --port 5173 --dir demo [--host 127.0.0.1]
// It sends a strict Content-Security-Policy (no inline script or style, no eval), the
// kind a careful shop runs, so the demo proves the widget works under one.
import http from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 && process.argv[index + 1] ? process.argv[index + 1] : fallback;
}

const port = Number(option("port", "5173"));
const host = option("host", "127.0.0.1");
const root = resolve(option("dir", "demo"));

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png",
  ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8",
};

// The API's origin is only known from demo/config.js, so scripts, images and
// connections may go to any http(s) origin; what stays forbidden is what matters for
// the widget: inline <script>/<style>, style="" attributes, eval.
const CSP = [
  "default-src 'self'", "script-src 'self' http: https:", "style-src 'self'", "img-src 'self' http: https: data:",
  "connect-src 'self' http: https:", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'",
].join("; ");

async function fileFor(urlPath) {
  let path;
  try { path = decodeURIComponent(urlPath); } catch { return null; }
  const full = normalize(join(root, path.endsWith("/") ? `${path}index.html` : path));
  if (full !== root && !full.startsWith(root + sep)) return null; // no ../ out of the folder
  try {
    const info = await stat(full);
    return info.isFile() ? full : null;
  } catch {
    return null;
  }
}

const server = http.createServer(async (req, res) => {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" });
    return res.end();
  }
  const url = new URL(req.url, "http://localhost");
  const file = await fileFor(url.pathname);
  if (!file) {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    return res.end("not found\n");
  }
  const body = await readFile(file);
  res.writeHead(200, {
    "content-type": TYPES[extname(file).toLowerCase()] || "application/octet-stream",
    "content-security-policy": CSP,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  res.end(req.method === "HEAD" ? undefined : body);
});

server.listen(port, host, () => console.log(`demo shop on http://${host}:${port}/ (serving ${root})`));
