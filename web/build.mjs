// Runs after `vite build`: copies the API reference viewer out of
// node_modules into dist/docs, where the server embeds it next to the
// console, and restores dist/.gitkeep (committed so that go:embed finds
// the folder in a fresh checkout; vite empties dist). Nothing is fetched
// at run time.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "node_modules", "swagger-ui-dist");
const dst = join(here, "dist", "docs");
mkdirSync(dst, { recursive: true });
for (const f of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]) {
  copyFileSync(join(src, f), join(dst, f));
}
writeFileSync(join(here, "dist", ".gitkeep"), "");
console.log("web: console in dist, API reference assets in dist/docs");
