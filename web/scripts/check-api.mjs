// Fails when src/api/schema.d.ts is not what openapi-typescript makes of
// the committed openapi.json: the console's client must not drift from
// the API. Fix with `npm run gen:api` (the build runs it too).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(mkdtempSync(join(tmpdir(), "millrace-api-")), "schema.d.ts");
execFileSync(join(web, "node_modules", ".bin", "openapi-typescript"), ["../openapi.json", "-o", out], { cwd: web, stdio: "ignore" });
const fresh = readFileSync(out, "utf8");
const committed = readFileSync(join(web, "src", "api", "schema.d.ts"), "utf8");
if (fresh !== committed) {
  console.error("web/src/api/schema.d.ts is stale: run `cd web && npm run gen:api` and commit it");
  process.exit(1);
}
console.log("web: the API client matches openapi.json");
