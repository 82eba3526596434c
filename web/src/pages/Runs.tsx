import { useEffect, useState } from "react";
import { api, must, type Schemas } from "../api/client";
import { useSession } from "../api/session";
import { Empty, Json, ProblemView, Spinner, StatusBadge, duration, useLoad, when } from "../components/ui";
import { Link, navigate, useLocation } from "../router";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "canceled"] as const;
type Status = (typeof STATUSES)[number];
const PAGE = 25;

export function Runs() {
  const { query } = useLocation();
  const workflow = query.get("workflow") ?? "";
  const status = (query.get("status") ?? "") as Status;
  const cursor = query.get("cursor") ?? "";
  const runs = useLoad(
    () => must(api.GET("/v1/runs", { params: { query: { workflow: workflow || undefined, status: status || undefined, cursor: cursor || undefined, limit: PAGE } } })),
    [workflow, status, cursor],
  );
  const workflows = useLoad(() => must(api.GET("/v1/workflows")), []);
  const go = (q: Record<string, string>) => {
    const p = new URLSearchParams({ workflow, status, cursor, ...q });
    for (const [k, v] of [...p.entries()]) if (!v) p.delete(k);
    navigate(`/runs${p.size ? `?${p}` : ""}`);
  };
  const list = runs.data?.runs ?? [];
  return (
    <>
      <h1>Runs</h1>
      <div className="panel row">
        <label htmlFor="f-workflow">Workflow</label>
        <select id="f-workflow" style={{ width: "auto" }} value={workflow} onChange={(e) => go({ workflow: e.target.value, cursor: "" })}>
          <option value="">all</option>
          {(workflows.data?.workflows ?? []).map((w) => (
            <option key={w.id} value={w.id}>
              {w.draft.name}
            </option>
          ))}
        </select>
        <label htmlFor="f-status">Status</label>
        <select id="f-status" style={{ width: "auto" }} value={status} onChange={(e) => go({ status: e.target.value, cursor: "" })}>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s || "all"}
            </option>
          ))}
        </select>
        <button type="button" onClick={runs.reload}>
          Refresh
        </button>
      </div>
      <ProblemView error={runs.error} />
      <div className="panel">
        {runs.loading && !runs.data ? (
          <Spinner />
        ) : list.length === 0 ? (
          <Empty title={workflow || status ? "No runs match these filters" : "No runs yet"}>
            {workflow || status ? "Clear the filters to see every run." : "Open a workflow, publish it and start a run, or add a trigger."}
          </Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Run</th>
                <th>Workflow</th>
                <th>Status</th>
                <th>Trigger</th>
                <th>Started</th>
                <th>Took</th>
              </tr>
            </thead>
            <tbody>
              {list.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link to={`/runs/${r.id}`}>
                      <code>{r.id}</code>
                    </Link>
                  </td>
                  <td>
                    {r.workflow_id} v{r.version}
                  </td>
                  <td>
                    <StatusBadge status={r.status} />
                    {r.error && <div className="field-error">{r.error}</div>}
                  </td>
                  <td>{r.trigger}</td>
                  <td>{when(r.created_at)}</td>
                  <td>{r.finished_at ? duration(r.created_at, r.finished_at) : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <div className="row" style={{ marginTop: "0.75rem" }}>
          <button type="button" disabled={!cursor} onClick={() => go({ cursor: "" })}>
            First page
          </button>
          <button type="button" disabled={!runs.data?.next_cursor} onClick={() => go({ cursor: runs.data!.next_cursor! })}>
            Next page
          </button>
        </div>
      </div>
    </>
  );
}

/**
 * useRunEvents calls onEvent for each of the run's Server-Sent Events while
 * the run is live. The stream is left open on run.finished: for a retried
 * run the server's backlog replays the earlier attempt's events, its
 * run.finished included, and ends the stream there; EventSource then
 * reconnects with Last-Event-ID and receives the new attempt's events. The
 * stream closes when the reloaded run is no longer live.
 */
function useRunEvents(id: string, live: boolean, onEvent: (e: Schemas["Event"]) => void) {
  useEffect(() => {
    if (!live) return;
    const es = new EventSource(`/v1/runs/${encodeURIComponent(id)}/events`);
    es.onmessage = (m) => onEvent(JSON.parse(m.data) as Schemas["Event"]);
    return () => es.close();
  }, [id, live]);
}

export function RunDetail({ id }: { id: string }) {
  const { can } = useSession();
  const run = useLoad(() => must(api.GET("/v1/runs/{id}", { params: { path: { id } } })), [id]);
  const [progress, setProgress] = useState<Record<string, Schemas["Progress"]>>({});
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState<string>("");
  const r = run.data;
  const live = !!r && (r.status === "queued" || r.status === "running");
  useRunEvents(id, live, (e) => {
    if (e.type === "node.progress" && e.node_id) setProgress((p) => ({ ...p, [e.node_id!]: e.data as Schemas["Progress"] }));
    else run.reload();
  });
  if (run.error) return <ProblemView error={run.error} hint="The run may have been deleted with its workflow. Go back to Runs." />;
  if (!r) return <Spinner />;
  const act = async (what: "cancel" | "retry" | "rerun", from?: string) => {
    setError(null);
    try {
      const res =
        what === "cancel"
          ? await must(api.POST("/v1/runs/{id}/cancel", { params: { path: { id } } }))
          : what === "retry"
            ? await must(api.POST("/v1/runs/{id}/retry", { params: { path: { id } } }))
            : await must(api.POST("/v1/runs/{id}/rerun", { params: { path: { id } }, body: { from } }));
      if (res.id !== id) navigate(`/runs/${res.id}`);
      else run.reload();
    } catch (e) {
      setError(e);
    }
  };
  const nodes = r.nodes ?? [];
  const t0 = new Date(r.started_at ?? r.created_at).getTime();
  const tEnd = Math.max(Date.now() * (live ? 1 : 0), new Date(r.finished_at ?? r.created_at).getTime(), ...nodes.map((n) => new Date(n.finished_at ?? n.started_at ?? r.created_at).getTime()));
  const span = Math.max(1, tEnd - t0);
  return (
    <>
      <div className="spread">
        <h1>
          Run <code>{r.id}</code> <StatusBadge status={r.status} />
        </h1>
        {can("workflows:run") && (
          <div className="row">
            {live && (
              <button className="danger" type="button" onClick={() => act("cancel")}>
                Cancel
              </button>
            )}
            {(r.status === "failed" || r.status === "canceled") && (
              <button className="primary" type="button" onClick={() => act("retry")}>
                Retry from failed nodes
              </button>
            )}
          </div>
        )}
      </div>
      <p className="muted">
        <Link to={`/workflows/${encodeURIComponent(r.workflow_id)}`}>{r.workflow_id}</Link> v{r.version} · {r.trigger} · created {when(r.created_at)}
        {r.finished_at ? ` · took ${duration(r.started_at ?? r.created_at, r.finished_at)}` : live ? " · live" : ""}
      </p>
      {r.error && (
        <div className="problem" role="alert">
          <strong>The run failed</strong>
          <p>{r.error}</p>
        </div>
      )}
      <ProblemView error={error} />
      <div className="panel">
        <h2 style={{ marginTop: 0 }}>Timeline</h2>
        {nodes.length === 0 ? (
          <p className="muted">{live ? "Waiting for the first node to start…" : "No node ran."}</p>
        ) : (
          <div className="timeline">
            {nodes.map((n) => {
              const s = n.started_at ? new Date(n.started_at).getTime() : t0;
              const e = n.finished_at ? new Date(n.finished_at).getTime() : live ? Date.now() : s;
              const p = progress[n.id];
              return (
                <div className="tl-row" key={n.id}>
                  <a className="tl-name" href={`#node-${n.id}`}>
                    {n.id}
                  </a>
                  <div className="tl-track" aria-label={`${n.id}: ${n.status}`}>
                    <div className={`tl-bar ${n.status}`} style={{ left: `${((s - t0) / span) * 100}%`, width: `${Math.max(0.5, ((e - s) / span) * 100)}%` }} />
                  </div>
                  <div>
                    <StatusBadge status={n.status} />
                    {p && n.status === "running" && (
                      <progress value={p.done} max={p.total || 1} aria-label={`${n.id} progress`} title={p.message} />
                    )}
                  </div>
                </div>
              );
            })}
          </div>
        )}
      </div>
      {nodes.map((n) => (
        <details key={n.id} id={`node-${n.id}`} className="panel" open={open === n.id || nodes.length <= 3 || n.status === "failed"} onToggle={(e) => (e.currentTarget.open ? setOpen(n.id) : undefined)}>
          <summary>
            <strong>{n.id}</strong> <StatusBadge status={n.status} /> <span className="muted">attempts {n.attempts}{n.started_at ? ` · ${duration(n.started_at, n.finished_at)}` : ""}</span>
          </summary>
          {n.error && <p className="field-error">{n.error}</p>}
          <div className="grid">
            <div>
              <h3>Input</h3>
              <Json value={n.input} />
            </div>
            <div>
              <h3>Output{n.port && n.port !== "default" ? ` (port ${n.port})` : ""}</h3>
              <Json value={n.output} />
            </div>
          </div>
          {Array.isArray(n.logs) && n.logs.length > 0 && (
            <>
              <h3>Logs</h3>
              <pre className="json">{(n.logs as Schemas["LogRecord"][]).map((l) => `${l.time} ${l.level} ${l.message}${l.attrs ? " " + JSON.stringify(l.attrs) : ""}`).join("\n")}</pre>
            </>
          )}
          <Artifacts runId={r.id} artifacts={n.artifacts ?? []} />
          {can("workflows:run") && !live && (
            <button type="button" onClick={() => act("rerun", n.id)}>
              Rerun from {n.id}
            </button>
          )}
        </details>
      ))}
      <div className="panel">
        <h2 style={{ marginTop: 0 }}>Run input and output</h2>
        <div className="grid">
          <div>
            <h3>Input</h3>
            <Json value={r.input} />
          </div>
          <div>
            <h3>Output</h3>
            <div data-testid="run-output">
              <Json value={r.output} />
            </div>
          </div>
        </div>
        <Artifacts runId={r.id} artifacts={r.artifacts ?? []} />
      </div>
    </>
  );
}

function Artifacts({ artifacts }: { runId?: string; artifacts: Schemas["ArtifactView"][] }) {
  if (artifacts.length === 0) return null;
  return (
    <>
      <h3>Artifacts</h3>
      <div className="grid">
        {artifacts.map((a) => (
          <figure key={a.id} style={{ margin: 0 }}>
            {a.content_type.startsWith("image/") && <img className="artifact" src={a.url} alt={a.name} loading="lazy" />}
            <figcaption>
              <a href={a.url} download>
                {a.name}
              </a>{" "}
              <span className="muted">
                {a.content_type}, {Math.ceil(a.size / 1024)} KiB
              </span>
            </figcaption>
          </figure>
        ))}
      </div>
    </>
  );
}
