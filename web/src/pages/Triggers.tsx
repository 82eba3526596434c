import { useEffect, useState } from "react";
import { Trash2 } from "lucide-react";
import { api, must, ProblemError, type Schemas } from "../api/client";
import { useSession } from "../api/session";
import { CopyButton, Empty, ProblemView, Spinner, useLoad, when } from "../components/ui";
import { navigate, useLocation } from "../router";

type Kind = Schemas["TriggerSpec"]["kind"];

export function Triggers() {
  const { can } = useSession();
  const { query } = useLocation();
  const workflows = useLoad(() => must(api.GET("/v1/workflows")), []);
  const wfs = workflows.data?.workflows ?? [];
  const wf = query.get("workflow") || wfs[0]?.id || "";
  const triggers = useLoad(() => (wf ? must(api.GET("/v1/workflows/{id}/triggers", { params: { path: { id: wf } } })) : Promise.resolve(null)), [wf]);
  const [created, setCreated] = useState<Schemas["CreatedTrigger"] | null>(null);
  const list = triggers.data?.triggers ?? [];
  const remove = async (id: string) => {
    if (!confirm("Delete this trigger? Callers of its URL will get 401.")) return;
    await must(api.DELETE("/v1/triggers/{trigger_id}", { params: { path: { trigger_id: id } } })).catch((e) => alert(e.message));
    triggers.reload();
  };
  if (workflows.loading && !workflows.data) return <Spinner />;
  return (
    <>
      <h1>Triggers</h1>
      <ProblemView error={workflows.error || triggers.error} />
      {wfs.length === 0 ? (
        <Empty title="No workflows to trigger">Create and publish a workflow first; then give it a webhook or a schedule here.</Empty>
      ) : (
        <>
          <div className="panel row">
            <label htmlFor="t-workflow">Workflow</label>
            <select id="t-workflow" style={{ width: "auto" }} value={wf} onChange={(e) => navigate(`/triggers?workflow=${encodeURIComponent(e.target.value)}`)}>
              {wfs.map((w) => (
                <option key={w.id} value={w.id}>
                  {w.draft.name} ({w.id})
                </option>
              ))}
            </select>
          </div>
          {created && <CreatedNotice t={created} onClose={() => setCreated(null)} />}
          <div className="panel">
            <h2 style={{ marginTop: 0 }}>Triggers of {wf}</h2>
            {list.length === 0 ? (
              <Empty title="No triggers">This workflow runs only when started by hand. Add a webhook or a schedule below.</Empty>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th>Kind</th>
                    <th>Details</th>
                    <th>Created</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {list.map((t) => (
                    <tr key={t.id}>
                      <td>{t.kind}</td>
                      <td>
                        {t.kind === "webhook" && t.path && <WebhookUrl path={t.path} />}
                        {t.kind === "webhook" && <div className="muted">{t.webhook?.mode ?? "async"}, auth {t.webhook?.auth ?? "secret"}</div>}
                        {t.kind === "cron" && (
                          <>
                            <code>{t.cron?.schedule}</code> {t.cron?.timezone} <div className="muted">next: {when(t.next_fire_at)}</div>
                          </>
                        )}
                        {t.kind === "workflow_finished" && (
                          <>
                            after <code>{t.after?.workflow_id}</code> {(t.after?.statuses ?? ["succeeded"]).join(", ")}
                          </>
                        )}
                      </td>
                      <td>{when(t.created_at)}</td>
                      <td>
                        {can("workflows:write") && (
                          <button type="button" className="icon danger" aria-label={`Delete trigger ${t.id}`} onClick={() => remove(t.id)}>
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
          {can("workflows:write") && (
            <NewTrigger
              workflow={wf}
              others={wfs.map((w) => w.id).filter((x) => x !== wf)}
              onCreated={(t) => {
                setCreated(t);
                triggers.reload();
              }}
            />
          )}
        </>
      )}
    </>
  );
}

function WebhookUrl({ path }: { path: string }) {
  const url = `${location.origin}${path}`;
  return (
    <span className="row">
      <code>{url}</code>
      <CopyButton text={url} label="Copy webhook URL" />
    </span>
  );
}

function CreatedNotice({ t, onClose }: { t: Schemas["CreatedTrigger"]; onClose: () => void }) {
  return (
    <div className="panel" role="status" style={{ borderColor: "var(--ok)" }}>
      <strong>Trigger created.</strong>
      {t.path && (
        <p>
          URL: <WebhookUrl path={t.path} />
        </p>
      )}
      {t.secret && (
        <>
          <p>Its secret is shown only now; copy it into the caller (header X-Millrace-Secret, or the HMAC key):</p>
          <div className="row">
            <code className="secret-once">{t.secret}</code>
            <CopyButton text={t.secret} label="Copy webhook secret" />
          </div>
          <p className="muted">
            Try it: <code>curl -X POST -H 'X-Millrace-Secret: …' -d '{"{}"}' {location.origin + (t.path ?? "")}</code>
          </p>
        </>
      )}
      <button type="button" onClick={onClose}>
        Done
      </button>
    </div>
  );
}

/** CronPreview asks the server for the next fire times as the schedule is typed. */
function useCronPreview(schedule: string, timezone: string) {
  const [state, setState] = useState<{ next?: string[]; error?: unknown }>({});
  useEffect(() => {
    if (!schedule.trim()) {
      setState({});
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      must(api.POST("/v1/cron/preview", { body: { schedule, timezone: timezone || undefined, count: 5 } })).then(
        (r) => live && setState({ next: r.next ?? [] }),
        (error) => live && setState({ error }),
      );
    }, 300);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [schedule, timezone]);
  return state;
}

function NewTrigger({ workflow, others, onCreated }: { workflow: string; others: string[]; onCreated: (t: Schemas["CreatedTrigger"]) => void }) {
  const [kind, setKind] = useState<Kind>("webhook");
  const [mode, setMode] = useState<"async" | "sync">("async");
  const [authKind, setAuthKind] = useState<"secret" | "hmac">("secret");
  const [schedule, setSchedule] = useState("0 9 * * 1-5");
  const [timezone, setTimezone] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  const [after, setAfter] = useState(others[0] ?? "");
  const [statuses, setStatuses] = useState<string[]>(["succeeded"]);
  const [error, setError] = useState<unknown>(null);
  const preview = useCronPreview(kind === "cron" ? schedule : "", timezone);
  const fieldErr = (name: string) => (preview.error instanceof ProblemError ? preview.error.fieldErrors()[`body.${name}`] : undefined) ?? (error instanceof ProblemError ? error.fieldErrors()[`body.cron.${name}`] : undefined);
  const create = async () => {
    setError(null);
    const body: Schemas["TriggerSpec"] =
      kind === "webhook"
        ? { kind, webhook: { mode, auth: authKind } }
        : kind === "cron"
          ? { kind, cron: { schedule, timezone } }
          : { kind, after: { workflow_id: after, statuses } };
    try {
      onCreated(await must(api.POST("/v1/workflows/{id}/triggers", { params: { path: { id: workflow } }, body })));
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section className="panel" aria-labelledby="new-trigger">
      <h2 id="new-trigger" style={{ marginTop: 0 }}>
        Add a trigger
      </h2>
      <div className="field">
        <label htmlFor="t-kind">Kind</label>
        <select id="t-kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)} style={{ width: "auto", alignSelf: "flex-start" }}>
          <option value="webhook">Webhook: an HTTP call starts a run</option>
          <option value="cron">Schedule (cron)</option>
          {others.length > 0 && <option value="workflow_finished">After another workflow's runs</option>}
        </select>
      </div>
      {kind === "webhook" && (
        <div className="row">
          <label htmlFor="t-mode">Answer</label>
          <select id="t-mode" style={{ width: "auto" }} value={mode} onChange={(e) => setMode(e.target.value as "async" | "sync")}>
            <option value="async">at once with the run id (async)</option>
            <option value="sync">with the run's output (sync)</option>
          </select>
          <label htmlFor="t-auth">Caller proves itself with</label>
          <select id="t-auth" style={{ width: "auto" }} value={authKind} onChange={(e) => setAuthKind(e.target.value as "secret" | "hmac")}>
            <option value="secret">the secret in a header</option>
            <option value="hmac">an HMAC-SHA256 signature</option>
          </select>
        </div>
      )}
      {kind === "cron" && (
        <>
          <div className="field">
            <label htmlFor="t-schedule">Schedule</label>
            <input id="t-schedule" value={schedule} onChange={(e) => setSchedule(e.target.value)} aria-invalid={!!fieldErr("schedule")} aria-describedby="t-schedule-help" />
            <small id="t-schedule-help">minute hour day-of-month month day-of-week, or @hourly, @daily, @every 10m</small>
            {fieldErr("schedule") && <small className="field-error">{fieldErr("schedule")}</small>}
          </div>
          <div className="field">
            <label htmlFor="t-tz">Time zone</label>
            <input id="t-tz" value={timezone} onChange={(e) => setTimezone(e.target.value)} aria-invalid={!!fieldErr("timezone")} />
            {fieldErr("timezone") && <small className="field-error">{fieldErr("timezone")}</small>}
          </div>
          {preview.next && (
            <div aria-live="polite">
              <strong>Next runs</strong>
              <ul>
                {preview.next.map((t) => (
                  <li key={t}>{new Date(t).toLocaleString(undefined, { timeZone: timezone || "UTC", dateStyle: "full", timeStyle: "short" })}</li>
                ))}
              </ul>
            </div>
          )}
        </>
      )}
      {kind === "workflow_finished" && (
        <div className="row">
          <label htmlFor="t-after">When a run of</label>
          <select id="t-after" style={{ width: "auto" }} value={after} onChange={(e) => setAfter(e.target.value)}>
            {others.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
          <span>ends as</span>
          {["succeeded", "failed", "canceled"].map((s) => (
            <label key={s} className="row">
              <input type="checkbox" checked={statuses.includes(s)} onChange={(e) => setStatuses(e.target.checked ? [...statuses, s] : statuses.filter((x) => x !== s))} /> {s}
            </label>
          ))}
        </div>
      )}
      <ProblemView error={error} />
      <button className="primary" type="button" onClick={create} style={{ marginTop: "0.75rem" }}>
        Add trigger
      </button>
    </section>
  );
}
