import { useState, type FormEvent } from "react";
import { Trash2 } from "lucide-react";
import { api, must, ProblemError, type Schemas } from "../api/client";
import { useSession, who } from "../api/session";
import { CopyButton, Empty, ProblemView, Spinner, StatusBadge, useLoad, when } from "../components/ui";
import { useTheme } from "../App";

export function Secrets() {
  const { can } = useSession();
  const list = useLoad(() => must(api.GET("/v1/secrets")), []);
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState("");
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await must(api.PUT("/v1/secrets/{name}", { params: { path: { name } }, body: { value } }));
      setSaved(name);
      setName("");
      setValue("");
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (n: string) => {
    if (!confirm(`Delete secret ${n}? Modules granted it will fail until it is set again.`)) return;
    await must(api.DELETE("/v1/secrets/{name}", { params: { path: { name: n } } })).catch(setError);
    list.reload();
  };
  const fields = error instanceof ProblemError ? error.fieldErrors() : {};
  const secrets = list.data?.secrets ?? [];
  return (
    <>
      <h1>Secrets</h1>
      <p className="muted">Secrets are encrypted at rest and write-only: nobody can read a value back here, only replace or delete it. Modules read the ones they are granted.</p>
      {can("secrets:write") && (
        <form className="panel" onSubmit={save}>
          <h2 style={{ marginTop: 0 }}>Set a secret</h2>
          <div className="row" style={{ alignItems: "flex-start" }}>
            <div className="field" style={{ flex: 1 }}>
              <label htmlFor="s-name">Name</label>
              <input id="s-name" value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z_][A-Za-z0-9_]{0,127}" placeholder="API_KEY" aria-invalid={!!fields["path.name"]} />
              {fields["path.name"] && <small className="field-error">{fields["path.name"]}</small>}
            </div>
            <div className="field" style={{ flex: 2 }}>
              <label htmlFor="s-value">Value</label>
              <input id="s-value" type="password" autoComplete="new-password" value={value} onChange={(e) => setValue(e.target.value)} required />
            </div>
          </div>
          <ProblemView error={error} />
          {saved && <p role="status" className="field-ok">Secret {saved} saved.</p>}
          <button className="primary" type="submit">
            Save secret
          </button>
        </form>
      )}
      <div className="panel">
        {list.loading && !list.data ? (
          <Spinner />
        ) : secrets.length === 0 ? (
          <Empty title="No secrets">Set one above; then grant it to the modules that need it (Modules → Capabilities).</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Updated</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {secrets.map((s) => (
                <tr key={s.name}>
                  <td>
                    <code>{s.name}</code>
                  </td>
                  <td>{when(s.updated_at)}</td>
                  <td>
                    {can("secrets:write") && (
                      <button type="button" className="icon danger" aria-label={`Delete secret ${s.name}`} onClick={() => remove(s.name)}>
                        <Trash2 size={16} />
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

/** serverScopes lists the scopes the server's operations use, from its OpenAPI document. */
async function serverScopes(): Promise<string[]> {
  const doc = await fetch("/openapi.json").then((r) => r.json());
  const out = new Set<string>();
  for (const item of Object.values(doc.paths ?? {}) as Record<string, { security?: Record<string, string[]>[] }>[]) {
    for (const op of Object.values(item)) for (const s of op.security ?? []) for (const sc of s.bearer ?? []) out.add(sc);
  }
  return [...out].sort();
}

export function Tokens() {
  const list = useLoad(() => must(api.GET("/v1/tokens")), []);
  const scopes = useLoad(serverScopes, []);
  const [name, setName] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  const [created, setCreated] = useState<string>("");
  const [error, setError] = useState<unknown>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const r = await must(api.POST("/v1/tokens", { body: { name, scopes: chosen } }));
      setCreated(r.token);
      setName("");
      setChosen([]);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (t: Schemas["TokenInfo"]) => {
    if (!confirm(`Revoke token ${t.name}? Anything using it stops working at once.`)) return;
    await must(api.DELETE("/v1/tokens/{id}", { params: { path: { id: t.id } } })).catch(setError);
    list.reload();
  };
  const tokens = list.data?.tokens ?? [];
  return (
    <>
      <h1>API tokens</h1>
      <form className="panel" onSubmit={create}>
        <h2 style={{ marginTop: 0 }}>Create a token</h2>
        <div className="field">
          <label htmlFor="tok-name">Name</label>
          <input id="tok-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} placeholder="ci-deploy" />
        </div>
        <fieldset style={{ border: "none", padding: 0 }}>
          <legend>Scopes</legend>
          <div className="grid" style={{ gap: "0.25rem" }}>
            {[...(scopes.data ?? []), "*"].map((s) => (
              <label key={s} className="row">
                <input type="checkbox" checked={chosen.includes(s)} onChange={(e) => setChosen(e.target.checked ? [...chosen, s] : chosen.filter((x) => x !== s))} />
                <code>{s}</code> {s === "*" && <span className="muted">(every scope, now and later)</span>}
              </label>
            ))}
          </div>
        </fieldset>
        <ProblemView error={error} />
        <button className="primary" type="submit" disabled={!name || chosen.length === 0}>
          Create token
        </button>
        {created && (
          <div role="status" style={{ marginTop: "0.75rem" }}>
            <p>The token is shown only now. Copy it:</p>
            <div className="row">
              <code className="secret-once">{created}</code>
              <CopyButton text={created} label="Copy token" />
            </div>
          </div>
        )}
      </form>
      <div className="panel">
        {list.loading && !list.data ? (
          <Spinner />
        ) : tokens.length === 0 ? (
          <Empty title="No tokens" />
        ) : (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Scopes</th>
                <th>Created</th>
                <th>Last used</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {tokens.map((t) => (
                <tr key={t.id}>
                  <td>
                    {t.name} <code className="muted">{t.id}</code>
                  </td>
                  <td>{(t.scopes ?? []).join(", ")}</td>
                  <td>{when(t.created_at)}</td>
                  <td>{t.last_used_at ? when(t.last_used_at) : <span className="muted">never</span>}</td>
                  <td>
                    <button type="button" className="icon danger" aria-label={`Revoke token ${t.name}`} onClick={() => revoke(t)}>
                      <Trash2 size={16} />
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

export function Settings() {
  const { session } = useSession();
  const [theme, setTheme] = useTheme();
  const ready = useLoad(() => must(api.GET("/readyz")), []);
  return (
    <>
      <h1>Settings</h1>
      <div className="panel">
        <h2 style={{ marginTop: 0 }}>Appearance</h2>
        <div className="row">
          <label htmlFor="theme">Theme</label>
          <select id="theme" style={{ width: "auto" }} value={theme} onChange={(e) => setTheme(e.target.value as "light" | "dark")}>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </div>
      </div>
      <div className="panel">
        <h2 style={{ marginTop: 0 }}>Session</h2>
        <p>
          Signed in as <strong>{session ? who(session) : ""}</strong>, role {session?.role || "none (the token's own scopes)"}.
        </p>
        <p className="muted">Scopes: {session?.scopes.join(", ")}</p>
      </div>
      <div className="panel">
        <h2 style={{ marginTop: 0 }}>Server</h2>
        <ProblemView error={ready.error} />
        {ready.data && (
          <p>
            Status <StatusBadge status={ready.data.status} /> · local AI <StatusBadge status={ready.data.accel.state} /> {ready.data.accel.reason && <span className="muted">{ready.data.accel.reason}</span>}
          </p>
        )}
        <p>
          The API reference is at <a href="/docs">/docs</a>; the OpenAPI document at <a href="/openapi.json">/openapi.json</a>.
        </p>
      </div>
    </>
  );
}
