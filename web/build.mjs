// Copies the API reference viewer out of node_modules into dist/docs, where
// the server embeds it. Nothing is fetched at run time.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "node_modules", "swagger-ui-dist");
const dst = join(here, "dist", "docs");
mkdirSync(dst, { recursive: true });
for (const f of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]) {
  copyFileSync(join(src, f), join(dst, f));
}
console.log("web: API reference assets in dist/docs");
