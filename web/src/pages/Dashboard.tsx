import { api, must, type Schemas } from "../api/client";
import { useSession } from "../api/session";
import { BarChart, type Bar } from "../components/BarChart";
import { Empty, ProblemView, Spinner, StatusBadge, useLoad, when } from "../components/ui";
import { Link } from "../router";

const DAYS = 14;

/** runsPerDay buckets runs by local day over the last DAYS days. */
export function runsPerDay(runs: Schemas["RunSummary"][], now = new Date()): Bar[] {
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (DAYS - 1));
  const bars: Bar[] = [];
  for (let i = 0; i < DAYS; i++) {
    const d = new Date(start.getFullYear(), start.getMonth(), start.getDate() + i);
    bars.push({
      label: `${d.getMonth() + 1}/${d.getDate()}`,
      values: [
        { name: "succeeded", value: 0, className: "ok" },
        { name: "failed", value: 0, className: "bad" },
        { name: "other", value: 0, className: "other" },
      ],
    });
  }
  for (const r of runs) {
    const t = new Date(r.created_at);
    const day = Math.floor((new Date(t.getFullYear(), t.getMonth(), t.getDate()).getTime() - start.getTime()) / 86400000);
    if (day < 0 || day >= DAYS) continue;
    const slot = r.status === "succeeded" ? 0 : r.status === "failed" ? 1 : 2;
    bars[day].values[slot].value++;
  }
  return bars;
}

export function Dashboard() {
  const { can } = useSession();
  const runs = useLoad(() => must(api.GET("/v1/runs", { params: { query: { limit: 500 } } })), []);
  const modules = useLoad(() => (can("modules:read") ? must(api.GET("/v1/modules")) : Promise.resolve(null)), []);
  const accel = useLoad(() => (can("models:read") ? must(api.GET("/v1/accel")) : Promise.resolve(null)), []);
  const list = runs.data?.runs ?? [];
  const failed = list.filter((r) => r.status === "failed");
  const busiest = Object.entries(
    list.reduce<Record<string, number>>((m, r) => {
      m[r.workflow_id] = (m[r.workflow_id] ?? 0) + 1;
      return m;
    }, {}),
  )
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  return (
    <>
      <h1>Dashboard</h1>
      <ProblemView error={runs.error} />
      <div className="grid">
        <div className="panel">
          <div className="muted">Runs{list.length >= 500 ? " (latest 500)" : ""}</div>
          <div className="stat">{runs.loading ? "…" : list.length}</div>
        </div>
        <div className="panel">
          <div className="muted">Failed runs</div>
          <div className="stat" style={{ color: failed.length ? "var(--bad)" : undefined }}>
            {runs.loading ? "…" : failed.length}
          </div>
        </div>
        {modules.data && (
          <div className="panel">
            <div className="muted">Modules</div>
            <div className="stat">{modules.data.modules?.length ?? 0}</div>
          </div>
        )}
        {accel.data && (
          <div className="panel">
            <div className="muted">Local AI accelerator</div>
            <div className="stat">
              <StatusBadge status={accel.data.state} />
            </div>
            {accel.data.fix && <small className="muted">{accel.data.fix}</small>}
          </div>
        )}
      </div>
      <div className="panel">
        <h2 style={{ marginTop: 0 }}>Runs over the last {DAYS} days</h2>
        {runs.loading ? <Spinner /> : list.length === 0 ? <Empty title="No runs yet">Open a workflow and press Run, or add a trigger.</Empty> : <BarChart title={`Runs per day: succeeded, failed, other`} bars={runsPerDay(list)} />}
        <div className="row muted">
          <span className="badge badge-succeeded">succeeded</span>
          <span className="badge badge-failed">failed</span>
          <span className="badge">other</span>
        </div>
      </div>
      <div className="grid">
        <div className="panel">
          <h2 style={{ marginTop: 0 }}>Busiest workflows</h2>
          {busiest.length === 0 ? (
            <p className="muted">No runs yet.</p>
          ) : (
            <table>
              <tbody>
                {busiest.map(([wf, n]) => (
                  <tr key={wf}>
                    <td>
                      <Link to={`/workflows/${encodeURIComponent(wf)}`}>{wf}</Link>
                    </td>
                    <td>{n === 1 ? "1 run" : `${n} runs`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div className="panel">
          <h2 style={{ marginTop: 0 }}>Recent failures</h2>
          {failed.length === 0 ? (
            <p className="muted">No failed runs.</p>
          ) : (
            <table>
              <tbody>
                {failed.slice(0, 5).map((r) => (
                  <tr key={r.id}>
                    <td>
                      <Link to={`/runs/${r.id}`}>{r.workflow_id}</Link>
                      <div className="muted">{r.error}</div>
                    </td>
                    <td>{when(r.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>
    </>
  );
}
