// Prints the gzip size of the widget and fails above its budget: it loads on every
// product page of every shop, over phone networks.
//   node tests/browser/widget-size.mjs
import { readFileSync } from "node:fs";
import { gzipSync, constants } from "node:zlib";

const BUDGET = 20 * 1024;
const file = new URL("../../assets/widget/widget.js", import.meta.url);
const source = readFileSync(file);
const gzipped = gzipSync(source, { level: constants.Z_BEST_COMPRESSION }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`assets/widget/widget.js: ${kb(source.length)} raw, ${kb(gzipped)} gzip (${gzipped} bytes; budget ${kb(BUDGET)})`);
if (gzipped > BUDGET) {
  console.error(`over budget by ${gzipped - BUDGET} bytes`);
  process.exit(1);
}
