import { useRef, useState, type DragEvent } from "react";
import { Upload } from "lucide-react";
import { api, must, ProblemError, uploadModule, type Schemas } from "../api/client";
import { useSession } from "../api/session";
import { defaults, SchemaForm, type JSONSchema } from "../components/SchemaForm";
import { Empty, Json, ProblemView, Spinner, useLoad, when } from "../components/ui";
import { Link, navigate } from "../router";

export function Modules() {
  const { can } = useSession();
  const list = useLoad(() => must(api.GET("/v1/modules")), []);
  const modules = list.data?.modules ?? [];
  return (
    <>
      <h1>Modules</h1>
      {can("modules:write") && <UploadPanel onUploaded={list.reload} />}
      <ProblemView error={list.error} />
      <div className="panel">
        {list.loading && !list.data ? (
          <Spinner />
        ) : modules.length === 0 ? (
          <Empty title="No modules installed">Upload a WebAssembly module above: drop its .wasm file (and its manifest.json unless the module embeds it).</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Module</th>
                <th>Category</th>
                <th>Latest</th>
                <th>Versions</th>
              </tr>
            </thead>
            <tbody>
              {modules.map((m) => (
                <tr key={m.id}>
                  <td>
                    <span aria-hidden>{m.icon} </span>
                    <Link to={`/modules/${encodeURIComponent(m.id)}`}>{m.name}</Link> <code className="muted">{m.id}</code>
                    <div className="muted">{m.description}</div>
                  </td>
                  <td>{m.category}</td>
                  <td>{m.latest}</td>
                  <td>{m.versions?.length ?? 0}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

/** UploadPanel takes a .wasm and an optional manifest.json by drag and drop or file pickers. */
function UploadPanel({ onUploaded }: { onUploaded: () => void }) {
  const [wasm, setWasm] = useState<File | null>(null);
  const [manifest, setManifest] = useState<File | null>(null);
  const [over, setOver] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<Schemas["Version"] | null>(null);
  const wasmInput = useRef<HTMLInputElement>(null);
  const manifestInput = useRef<HTMLInputElement>(null);

  const take = (files: FileList | File[]) => {
    for (const f of Array.from(files)) {
      if (f.name.endsWith(".json")) setManifest(f);
      else setWasm(f);
    }
    setError(null);
    setDone(null);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    take(e.dataTransfer.files);
  };
  const submit = async () => {
    if (!wasm) return;
    setError(null);
    setProgress(0);
    try {
      const v = await uploadModule(wasm, manifest, setProgress);
      setDone(v);
      setWasm(null);
      setManifest(null);
      // Let the same file be chosen again (a fixed build of it).
      if (wasmInput.current) wasmInput.current.value = "";
      if (manifestInput.current) manifestInput.current.value = "";
      onUploaded();
    } catch (err) {
      setError(err);
    } finally {
      setProgress(null);
    }
  };
  const fields = error instanceof ProblemError ? error.fieldErrors() : {};
  const fieldFor = (prefix: string) => Object.entries(fields).filter(([k]) => k === prefix || k.startsWith(prefix + "."));
  return (
    <section className="panel" aria-labelledby="upload-title">
      <h2 id="upload-title" style={{ marginTop: 0 }}>
        Upload a module
      </h2>
      <div
        className={`dropzone${over ? " over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p>
          <Upload size={18} aria-hidden /> Drop a <code>.wasm</code> file and its <code>manifest.json</code> here, or choose them:
        </p>
        <div className="row" style={{ justifyContent: "center" }}>
          <label className="button" htmlFor="wasm-file">
            Choose the .wasm file
          </label>
          <input id="wasm-file" ref={wasmInput} className="file-input" type="file" accept=".wasm,application/wasm" onChange={(e) => e.target.files && take(e.target.files)} />
          <label className="button" htmlFor="manifest-file">
            Choose manifest.json (optional)
          </label>
          <input id="manifest-file" ref={manifestInput} className="file-input" type="file" accept=".json,application/json" onChange={(e) => setManifest(e.target.files?.[0] ?? null)} />
        </div>
        <p className="muted">
          {wasm ? `Module: ${wasm.name} (${Math.round(wasm.size / 1024)} KiB)` : "No module chosen."} {manifest ? `Manifest: ${manifest.name}` : ""}{" "}
          {manifest && (
            <button
              type="button"
              className="icon"
              onClick={() => {
                setManifest(null);
                if (manifestInput.current) manifestInput.current.value = "";
              }}
            >
              Remove manifest
            </button>
          )}
        </p>
        {fieldFor("wasm").map(([k, m]) => (
          <p key={k} className="field-error" role="alert">
            Module file: {m}
          </p>
        ))}
        {fieldFor("manifest").map(([k, m]) => (
          <p key={k} className="field-error" role="alert">
            Manifest <code>{k.replace(/^manifest\.?/, "") || "file"}</code>: {m}
          </p>
        ))}
      </div>
      {progress !== null && <progress value={progress} max={1} aria-label="Upload progress" />}
      <ProblemView error={error} hint="Fix the file and upload again. ABI.md §6 describes the manifest." />
      {done && (
        <p role="status">
          Uploaded <Link to={`/modules/${encodeURIComponent(done.id)}`}>{done.manifest.name} {done.version}</Link>.{" "}
          {(done.required_capabilities?.length ?? 0) > 0 ? "It requests capabilities: review and grant them before it runs." : ""}
        </p>
      )}
      <div className="row" style={{ marginTop: "0.5rem" }}>
        <button className="primary" type="button" disabled={!wasm || progress !== null} onClick={submit}>
          Upload
        </button>
      </div>
    </section>
  );
}

type Tab = "manifest" | "capabilities" | "try";

export function ModuleDetail({ id }: { id: string }) {
  const { can } = useSession();
  const mod = useLoad(() => must(api.GET("/v1/modules/{id}", { params: { path: { id } } })), [id]);
  const [version, setVersion] = useState<string>("");
  const [tab, setTab] = useState<Tab>("manifest");
  if (mod.error) return <ProblemView error={mod.error} hint="Go back to Modules and pick one that exists." />;
  if (!mod.data) return <Spinner />;
  const versions = mod.data.versions ?? [];
  if (versions.length === 0) return <Empty title="This module has no versions left">Upload one under Modules.</Empty>;
  const ver = versions.find((x) => x.version === version) ?? versions[versions.length - 1];
  const v = ver.version;
  const m = ver.manifest;
  const remove = async () => {
    if (!confirm(`Delete version ${v} of ${m.name}?`)) return;
    try {
      await must(api.DELETE("/v1/modules/{id}/versions/{version}", { params: { path: { id, version: v } } }));
      if (versions.length <= 1) navigate("/modules");
      else {
        setVersion("");
        mod.reload();
      }
    } catch (e) {
      alert((e as Error).message);
    }
  };
  return (
    <>
      <div className="spread">
        <h1>
          <span aria-hidden>{m.icon} </span>
          {m.name} <code className="muted">{m.id}</code>
        </h1>
        <div className="row">
          <label htmlFor="version">Version</label>
          <select id="version" value={v} onChange={(e) => setVersion(e.target.value)} style={{ width: "auto" }}>
            {versions.map((x) => (
              <option key={x.version}>{x.version}</option>
            ))}
          </select>
          {can("modules:write") && (
            <button className="danger" type="button" onClick={remove}>
              Delete version
            </button>
          )}
        </div>
      </div>
      <p className="muted">{m.description}</p>
      <div className="tabs" role="tablist">
        {(["manifest", "capabilities", "try"] as Tab[]).map((t) => (
          <button key={t} role="tab" aria-selected={tab === t} type="button" onClick={() => setTab(t)}>
            {t === "manifest" ? "Manifest" : t === "capabilities" ? "Capabilities" : "Try it"}
          </button>
        ))}
      </div>
      {tab === "manifest" ? (
        <div className="panel">
          <table>
            <tbody>
              <tr><th>Version</th><td>{ver.version}</td></tr>
              <tr><th>Type</th><td>{m.type}</td></tr>
              <tr><th>Author</th><td>{m.author}</td></tr>
              <tr><th>License</th><td>{m.license}</td></tr>
              <tr><th>Size</th><td>{Math.round(ver.size / 1024)} KiB</td></tr>
              <tr><th>SHA-256</th><td><code>{ver.sha256}</code></td></tr>
              <tr><th>Uploaded</th><td>{when(ver.created_at)}</td></tr>
            </tbody>
          </table>
          <h3>Manifest</h3>
          <Json value={m} />
        </div>
      ) : tab === "capabilities" ? (
        <Grants key={v} version={ver} canGrant={can("modules:grant")} onSaved={mod.reload} />
      ) : (
        <TryIt key={v} version={ver} canInvoke={can("modules:invoke")} />
      )}
    </>
  );
}

type Caps = Schemas["Capabilities"];

/** requestedItems lists each capability a manifest requests, as a key and a label. */
export function requestedItems(c: Caps | undefined): { key: string; label: string }[] {
  const out: { key: string; label: string }[] = [];
  if (!c) return out;
  if (c.kv) out.push({ key: "kv", label: "Key-value store (kv)" });
  for (const h of c.allowed_outbound_hosts ?? []) out.push({ key: `host:${h}`, label: `Outbound HTTP to ${h}` });
  for (const s of c.secrets ?? []) out.push({ key: `secret:${s}`, label: `Secret ${s}` });
  for (const m of c.accel?.models ?? []) out.push({ key: `model:${m}`, label: `Local AI model ${m}` });
  return out;
}

function grantedKeys(g: Schemas["Grant"] | undefined | null): Set<string> {
  return new Set(requestedItems(g?.capabilities).map((i) => i.key));
}

function capsFrom(keys: Set<string>): Caps {
  const c: Caps = {};
  const hosts: string[] = [];
  const secrets: string[] = [];
  const models: string[] = [];
  for (const k of keys) {
    if (k === "kv") c.kv = true;
    else if (k.startsWith("host:")) hosts.push(k.slice(5));
    else if (k.startsWith("secret:")) secrets.push(k.slice(7));
    else if (k.startsWith("model:")) models.push(k.slice(6));
  }
  if (hosts.length) c.allowed_outbound_hosts = hosts;
  if (secrets.length) c.secrets = secrets;
  if (models.length) c.accel = { models };
  return c;
}

function Grants({ version, canGrant, onSaved }: { version: Schemas["Version"]; canGrant: boolean; onSaved: () => void }) {
  const requested = requestedItems(version.manifest.capabilities);
  const [keys, setKeys] = useState(() => grantedKeys(version.grant));
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const save = async (next: Set<string>) => {
    setError(null);
    setSaved(false);
    try {
      await must(
        api.PUT("/v1/modules/{id}/versions/{version}/grants", {
          params: { path: { id: version.id, version: version.version } },
          body: { capabilities: capsFrom(next), limits: version.grant?.limits ?? version.manifest.limits },
        }),
      );
      setKeys(next);
      setSaved(true);
      onSaved();
    } catch (e) {
      setError(e);
    }
  };
  const toggle = (k: string) => {
    const next = new Set(keys);
    if (next.has(k)) next.delete(k);
    else next.add(k);
    setKeys(next);
  };
  return (
    <div className="panel">
      <p>A module can use only what an admin grants it; it may be granted less than it requests, never more.</p>
      {requested.length === 0 ? (
        <Empty title="This module requests no capabilities">It runs with only pure computation: nothing to grant.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Requested</th>
              <th>Granted</th>
            </tr>
          </thead>
          <tbody>
            {requested.map((r) => (
              <tr key={r.key}>
                <td>
                  <label htmlFor={`cap-${r.key}`}>{r.label}</label>
                </td>
                <td>
                  <input id={`cap-${r.key}`} type="checkbox" disabled={!canGrant} checked={keys.has(r.key)} onChange={() => toggle(r.key)} />{" "}
                  <span className={`badge badge-${keys.has(r.key) ? "granted" : "denied"}`}>{keys.has(r.key) ? "granted" : "not granted"}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {version.required_capabilities && version.required_capabilities.length > 0 && (
        <p className="muted">The module's code imports: {version.required_capabilities.join(", ")}. It cannot run until these are granted.</p>
      )}
      <h3>Limits</h3>
      <Json value={version.grant?.limits ?? version.manifest.limits} />
      <ProblemView error={error} />
      {saved && <p role="status" className="field-ok">Grant saved.</p>}
      {canGrant && (
        <div className="row" style={{ marginTop: "0.75rem" }}>
          <button className="primary" type="button" onClick={() => save(keys)}>
            Save grant
          </button>
          {requested.length > 0 && (
            <button type="button" onClick={() => save(new Set(requested.map((r) => r.key)))}>
              Grant all requested
            </button>
          )}
          <button className="danger" type="button" onClick={() => save(new Set())}>
            Revoke all
          </button>
        </div>
      )}
    </div>
  );
}

function TryIt({ version, canInvoke }: { version: Schemas["Version"]; canInvoke: boolean }) {
  const schema = version.manifest.inputs as JSONSchema | undefined;
  const [input, setInput] = useState<unknown>(() => defaults(schema));
  const [result, setResult] = useState<Schemas["InvokeResult"] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const fields: Record<string, string> = {};
  if (error instanceof ProblemError) {
    for (const [k, m] of Object.entries(error.fieldErrors())) fields[k.replace(/^body\.input\.?/, "")] = m;
  }
  const run = async () => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(await must(api.POST("/v1/modules/{id}/versions/{version}/invoke", { params: { path: { id: version.id, version: version.version } }, body: { input } })));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (!canInvoke) return <Empty title="You cannot run modules">Your token lacks the modules:invoke scope; ask an admin.</Empty>;
  return (
    <div className="panel">
      <p className="muted">{(schema as JSONSchema | undefined)?.description ?? "The form follows the module's input schema."}</p>
      <SchemaForm schema={schema} value={input} onChange={setInput} errors={fields} idPrefix="try" />
      <button className="primary" type="button" onClick={run} disabled={busy}>
        {busy ? "Running…" : "Run module"}
      </button>
      <ProblemView error={error} />
      {result && (
        <>
          <h3>Output ({result.duration_ms.toFixed(1)} ms)</h3>
          <Json value={result.output} />
          {result.logs && result.logs.length > 0 && (
            <>
              <h3>Logs</h3>
              <Json value={result.logs} />
            </>
          )}
        </>
      )}
    </div>
  );
}
