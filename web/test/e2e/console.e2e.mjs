// End-to-end tests of the admin console: a real millrace server (built by
// make, started here on a free port with a throwaway data directory) and
// Debian's Chromium, headless, driven by playwright-core. It walks what a
// new user does: sign in; upload a broken module and see the server's
// error where it applies; upload a good one and grant it what it asks;
// build a two-node workflow on the canvas; run it, watch it finish and
// read its output. It screenshots every main page into $SCREENSHOTS.
//
// Run with `make test-console` (or MILLRACE_BIN=… node test/e2e/console.e2e.mjs).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const bin = process.env.MILLRACE_BIN ?? join(root, "bin", "millrace");
const shots = process.env.SCREENSHOTS ?? join(root, "build", "console-screenshots");
const browserPath = process.env.MILLRACE_CHROMIUM ?? "/usr/bin/chromium";
const builtins = join(root, "server", "builtin", "wasm");
rmSync(shots, { recursive: true, force: true }); // no stale screenshots from an earlier run
mkdirSync(shots, { recursive: true });

/** startServer runs millrace on a free port and returns its URL and the admin token it prints. */
async function startServer() {
  const data = mkdtempSync(join(tmpdir(), "millrace-e2e-"));
  const proc = spawn(bin, ["serve", "-addr", "127.0.0.1:0", "-data", data, "-accel", "off"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const ready = new Promise((resolve, reject) => {
    const onData = (b) => {
      out += b.toString();
      const url = /serving (http:\/\/[0-9.:]+)/.exec(out);
      const token = /(mr_[A-Za-z0-9_-]+)/.exec(out);
      if (url && token) resolve({ url: url[1], token: token[1] });
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.on("exit", (code) => reject(new Error(`millrace exited (${code}) before serving:\n${out}`)));
  });
  const s = await ready;
  // Serving comes before start-up finishes (built-in modules install
  // then): wait until the server says it is ready.
  for (;;) {
    const r = await fetch(`${s.url}/readyz`).catch(() => null);
    if (r?.ok) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  return {
    ...s,
    log: () => out,
    stop: () => {
      proc.kill("SIGTERM");
      rmSync(data, { recursive: true, force: true });
    },
  };
}

const steps = [];
function step(name, fn) {
  steps.push({ name, fn });
}

let server;
let browser;
let page;
const consoleErrors = [];

async function shot(name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function go(path) {
  await page.goto(server.url + path);
}

/** until polls a condition (the page updates asynchronously) for up to 15 s. */
async function until(cond, what) {
  for (let i = 0; i < 75; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** stableBox returns an element's box once two reads 100 ms apart agree. */
async function stableBox(locator) {
  let last = null;
  for (let i = 0; i < 50; i++) {
    const box = await locator.boundingBox();
    if (box && last && box.x === last.x && box.y === last.y && box.width === last.width) return box;
    last = box;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the element keeps moving");
}

async function expectText(locator, text, timeout = 15000) {
  await locator.filter({ hasText: text }).first().waitFor({ timeout });
}

step("sign in with the admin token", async () => {
  await go("/");
  await page.getByLabel("API token").waitFor();
  await shot("01-sign-in");
  await page.getByLabel("API token").fill("mr_not-a-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expectText(page.getByRole("alert"), "not valid");
  await page.getByLabel("API token").fill(server.token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  // The session is a cookie: a reload keeps the user signed in.
  await page.reload();
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  await shot("02-dashboard-empty");
});

step("a broken module shows the server's error where it applies", async () => {
  await page.getByRole("link", { name: "Modules" }).click();
  await page.getByRole("heading", { name: "Modules" }).waitFor();
  await page.locator("#wasm-file").setInputFiles({ name: "echo.wasm", mimeType: "application/wasm", buffer: readFileSync(join(builtins, "echo.wasm")) });
  const bad = JSON.stringify({ abi: 1, id: "Bad Id!", name: "Broken", version: "1.0.0" });
  await page.locator("#manifest-file").setInputFiles({ name: "manifest.json", mimeType: "application/json", buffer: Buffer.from(bad) });
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await expectText(page.locator(".dropzone .field-error"), "is not a valid id");
  await expectText(page.locator(".dropzone .field-error"), "id");
  await shot("03-modules-upload-error");

  // Drop a file that is not WebAssembly on the drop zone.
  const dropped = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(["not webassembly"], "junk.wasm", { type: "application/wasm" }));
    return dt;
  });
  await page.locator(".dropzone").dispatchEvent("dragover", { dataTransfer: dropped });
  await page.locator(".dropzone").dispatchEvent("drop", { dataTransfer: dropped });
  await expectText(page.locator(".dropzone"), "Module: junk.wasm");
  await page.getByRole("button", { name: "Remove manifest" }).click();
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await expectText(page.locator(".dropzone .field-error"), "Module file: not a WebAssembly binary");
});

step("upload a module and grant what it requests", async () => {
  const manifest = JSON.parse(readFileSync(join(builtins, "kv_counter.json"), "utf8"));
  manifest.id = "tally";
  manifest.name = "Tally";
  await page.locator("#wasm-file").setInputFiles({ name: "tally.wasm", mimeType: "application/wasm", buffer: readFileSync(join(builtins, "kv_counter.wasm")) });
  await page.locator("#manifest-file").setInputFiles({ name: "manifest.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(manifest)) });
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await expectText(page.getByRole("status"), "Uploaded");
  await expectText(page.locator("table"), "Tally");
  await shot("04-modules");
  await page.getByRole("status").getByRole("link", { name: /Tally/ }).click();
  await page.getByRole("heading", { name: /Tally/ }).waitFor();
  await shot("05-module-manifest");
  await page.getByRole("tab", { name: "Capabilities" }).click();
  const kv = page.getByLabel("Key-value store (kv)");
  if (await kv.isChecked()) throw new Error("kv is granted before anyone granted it");
  await page.getByRole("button", { name: "Grant all requested" }).click();
  await expectText(page.getByRole("status"), "Grant saved");
  if (!(await kv.isChecked())) throw new Error("kv is not shown granted after the grant");
  await shot("06-module-capabilities");

  // Try it: the form follows the module's input schema.
  await page.getByRole("tab", { name: "Try it" }).click();
  await page.getByLabel("key").fill("tries");
  await page.getByLabel("delta").fill("5");
  await page.getByRole("button", { name: "Run module" }).click();
  await expectText(page.locator("pre.json"), '"value": 5');
  await shot("07-module-try-it");
});

step("build a two-node workflow in the editor", async () => {
  await page.getByRole("link", { name: "Workflows" }).click();
  await page.getByLabel("New workflow id").fill("greet");
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: /greet/ }).waitFor();
  // Drag a module from the palette onto the canvas; Delete removes it.
  await page.locator(".palette-item", { hasText: "Echo" }).dragTo(page.locator(".react-flow__pane"));
  await page.locator('[data-testid="node-echo"]').click();
  await page.keyboard.press("Delete");
  await page.locator('[data-testid="node-echo"]').waitFor({ state: "detached" });

  await page.getByRole("button", { name: "Add Tally" }).click();
  await page.locator('[data-testid="node-tally"]').waitFor();
  await page.getByRole("button", { name: "Add Text Template" }).click();
  await page.locator('[data-testid="node-text_template"]').waitFor();

  // Connect tally's output to text_template's input by dragging.
  const from = page.locator('[data-testid="node-tally"] .react-flow__handle.source');
  const to = page.locator('[data-testid="node-text_template"] .react-flow__handle.target');
  // The canvas refits when a node is added: wait until it stands still.
  const a = await stableBox(from);
  const b = await stableBox(to);
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2, { steps: 5 });
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.locator(".react-flow__edge").first().waitFor();

  // Map text_template's input with CEL, validated as it is typed.
  await page.locator('[data-testid="node-text_template"]').click();
  await page.getByLabel("Input is").selectOption("fields");
  await page.getByLabel("Field data").fill("nodes.tally.output +");
  await expectText(page.locator(".inspector .field-error"), "Syntax error");
  await page.getByLabel("Field data").fill("nodes.tally.output");
  await page.getByLabel("Field template").fill('"Count is {{.value}}"');
  await expectText(page.locator(".inspector .field-ok"), "valid CEL");
  await shot("08-workflow-editor");

  await page.getByRole("button", { name: "Save draft" }).click();
  await expectText(page.getByRole("status"), "Draft saved");
  await page.getByRole("button", { name: "Publish" }).click();
  await expectText(page.getByRole("status"), "Published version 1");
});

step("run it, watch it finish and read its output", async () => {
  await page.getByRole("tab", { name: "Run" }).click();
  await page.getByLabel("Run input (JSON)").fill('{"key": "visits", "delta": 2}');
  await page.getByRole("button", { name: "Start run" }).click();
  await page.getByRole("heading", { name: /Run run_/ }).waitFor();
  await expectText(page.getByRole("heading", { name: /Run run_/ }), "succeeded", 30000);
  await expectText(page.getByTestId("run-output"), "Count is 2");
  await shot("09-run");
  await page.getByRole("link", { name: "Runs" }).click();
  await expectText(page.locator("table"), "greet");
  await shot("10-runs");
});

step("a failed run says why; after the fix, retry finishes it", async () => {
  // Revoke tally's grant: its node fails for want of the kv store.
  await go("/modules/tally");
  await page.getByRole("tab", { name: "Capabilities" }).click();
  await page.getByRole("button", { name: "Revoke all" }).click();
  await expectText(page.getByRole("status"), "Grant saved");
  await go("/workflows/greet");
  await page.getByRole("tab", { name: "Run" }).click();
  await page.getByLabel("Run input (JSON)").fill('{"key": "visits", "delta": 1}');
  await page.getByRole("button", { name: "Start run" }).click();
  await expectText(page.getByRole("heading", { name: /Run run_/ }), "failed", 30000);
  await expectText(page.getByRole("alert"), "The run failed");
  const runURL = page.url();
  await shot("10b-run-failed");

  // The failed filter finds it.
  await page.getByRole("link", { name: "Runs" }).click();
  await page.getByLabel("Status").selectOption("failed");
  await until(async () => (await page.locator("tbody tr").count()) === 1 && (await page.locator("tbody .badge-failed").count()) === 1, "the failed filter shows exactly the failed run");

  // Grant again and retry: the failed node runs, the rest is kept.
  await go("/modules/tally");
  await page.getByRole("tab", { name: "Capabilities" }).click();
  await page.getByRole("button", { name: "Grant all requested" }).click();
  await expectText(page.getByRole("status"), "Grant saved");
  await page.goto(runURL);
  await page.getByRole("button", { name: "Retry from failed nodes" }).click();
  await expectText(page.getByRole("heading", { name: /Run run_/ }), "succeeded", 30000);
  await expectText(page.getByTestId("run-output"), "Count is 3");
});

step("history, triggers and the other pages", async () => {
  await go("/workflows/greet");
  await page.getByLabel("Description").fill("Counts visits and says so.");
  await page.getByRole("button", { name: "Save draft" }).click();
  await expectText(page.getByRole("status"), "Draft saved");
  await page.getByRole("tab", { name: "Version history" }).click();
  await expectText(page.getByLabel("Differences").locator(".add"), "Counts visits and says so.");
  await shot("11-workflow-history");

  await page.getByRole("link", { name: "Triggers" }).click();
  await page.getByLabel("Kind").selectOption("cron");
  await page.getByLabel("Schedule").fill("61 * * * *");
  await expectText(page.locator(".field-error"), "not a cron schedule");
  await page.getByLabel("Schedule").fill("0 9 * * 1-5");
  await page.getByLabel("Time zone").fill("UTC");
  await page.getByText("Next runs").waitFor();
  await page.getByLabel("Kind").selectOption("webhook");
  await page.getByRole("button", { name: "Add trigger" }).click();
  await expectText(page.getByRole("status"), "Trigger created");
  await page.getByRole("button", { name: "Copy webhook secret" }).waitFor();
  await shot("12-triggers");

  await page.getByRole("link", { name: "Secrets" }).click();
  await page.getByLabel("Name").fill("API_KEY");
  await page.getByLabel("Value").fill("hunter2");
  await page.getByRole("button", { name: "Save secret" }).click();
  await expectText(page.getByRole("status"), "Secret API_KEY saved");
  if ((await page.content()).includes("hunter2")) throw new Error("the secret's value is shown");
  await shot("13-secrets");

  await page.getByRole("link", { name: "API tokens" }).click();
  await expectText(page.locator("table"), "admin");
  await shot("14-tokens");
  await page.getByRole("link", { name: "AI models" }).click();
  await page.getByRole("heading", { name: "Accelerator" }).waitFor();
  await shot("15-models");
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("heading", { name: "Settings" }).waitFor();
  await shot("16-settings");
  await page.getByRole("link", { name: "Dashboard" }).click();
  await expectText(page.locator(".panel"), "Busiest workflows");
  await expectText(page.locator("table"), "greet");
  await shot("17-dashboard");
  await page.getByRole("button", { name: /Switch to dark theme/ }).click();
  await shot("18-dashboard-dark");
  await go("/workflows/greet");
  await page.locator('[data-testid="node-tally"]').waitFor();
  await shot("19-workflow-editor-dark");
  await page.getByRole("button", { name: /Switch to light theme/ }).click();
  // A small laptop screen.
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.locator('[data-testid="node-tally"]').click();
  await shot("20-workflow-editor-1280x720");
  await page.setViewportSize({ width: 1366, height: 800 });
});

step("datasets: upload one and read its statistics and rows", async () => {
  await page.getByRole("link", { name: "Datasets" }).click();
  const rows = ["text,label"];
  for (let i = 0; i < 40; i++) rows.push(i % 2 ? `win a free prize now ${i},spam` : `meeting notes for the team ${i},ham`);
  await page.locator("#ds-file").setInputFiles({ name: "mail.csv", mimeType: "text/csv", buffer: Buffer.from(rows.join("\n") + "\n") });
  await page.getByLabel("Name (optional)").fill("mail");
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await page.getByRole("heading", { name: /mail/ }).waitFor();
  await expectText(page.locator(".panel"), "40 rows");
  await expectText(page.locator(".panel", { hasText: "Labels" }), "spam");
  await expectText(page.locator(".panel", { hasText: "Preview" }).locator("table"), "meeting notes for the team");
  await shot("21-dataset");
});

step("training: start a job on the dataset", async () => {
  await page.getByRole("link", { name: "Training" }).click();
  await page.getByLabel("Model name").fill("spam-filter");
  await page.getByLabel("Epochs").fill("3");
  await page.getByRole("button", { name: "Start training" }).click();
  // Without the accelerator (this server runs with -accel off) the job
  // waits in the queue; its page says so and offers to cancel it.
  await page.getByRole("heading", { name: /Training tj_/ }).waitFor();
  await expectText(page.locator(".panel"), "Waiting for the first epoch");
  await shot("22-training-job");
  await page.getByRole("button", { name: "Cancel" }).click();
  await expectText(page.getByRole("heading", { name: /Training tj_/ }), "cancelled");
  if (await page.getByRole("button", { name: "Cancel" }).count()) throw new Error("a cancelled job still offers Cancel");
});

step("image studio: the form follows the module, and a missing model is explained", async () => {
  await page.getByRole("link", { name: "Image studio" }).click();
  await page.getByRole("heading", { name: "Image studio" }).waitFor();
  await page.locator("#sdxl-prompt").fill("a lighthouse at dusk");
  await page.getByRole("button", { name: "Generate" }).click();
  // This server has local AI off: the answer is a problem that says so.
  await page.locator(".panel .problem").waitFor({ timeout: 60000 });
  await shot("23-image-studio");
});

step("a viewer sees no write controls", async () => {
  const res = await fetch(`${server.url}/v1/tokens`, {
    method: "POST",
    headers: { Authorization: `Bearer ${server.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "viewer", scopes: ["modules:read", "workflows:read"] }),
  });
  const { token } = await res.json();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  for (const hidden of ["Secrets", "API tokens", "AI models"]) {
    if (await page.getByRole("link", { name: hidden }).count()) throw new Error(`a viewer sees ${hidden}`);
  }
  await page.getByRole("link", { name: "Modules" }).click();
  await page.getByRole("heading", { name: "Modules" }).waitFor();
  if (await page.getByText("Upload a module").count()) throw new Error("a viewer sees the upload form");
  await go("/workflows/greet");
  await page.locator('[data-testid="node-tally"]').waitFor();
  if (await page.getByRole("button", { name: "Publish" }).count()) throw new Error("a viewer sees Publish");
});

let failed = 0;
try {
  server = await startServer();
  browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  page = await context.newPage();
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  for (const s of steps) {
    const t0 = Date.now();
    try {
      await s.fn();
      console.log(`ok   ${s.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${s.name}: ${e.stack ?? e}`);
      await shot(`FAILED-${steps.indexOf(s) + 1}`).catch(() => undefined);
      break; // later steps build on this one
    }
  }
  // Problems the page logged itself (uncaught errors, failed loads other
  // than the 401/422 answers the steps provoke on purpose).
  const unexpected = consoleErrors.filter((e) => !/status of (401|403|409|422)/.test(e));
  if (unexpected.length) {
    failed++;
    console.log(`FAIL the page logged errors:\n  ${unexpected.join("\n  ")}`);
  }
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e.stack ?? e}`);
} finally {
  await browser?.close();
  if (failed && server) writeFileSync(join(shots, "server.log"), server.log());
  server?.stop();
}
console.log(failed ? `console e2e: ${failed} failed (screenshots in ${shots})` : `console e2e: all ${steps.length} steps passed (screenshots in ${shots})`);
process.exit(failed ? 1 : 0);
