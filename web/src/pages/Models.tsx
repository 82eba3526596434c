import { api, must, type Schemas } from "../api/client";
import { Empty, ProblemView, Spinner, StatusBadge, useLoad, when } from "../components/ui";

function Tensors({ list }: { list: Schemas["Tensor"][] | null | undefined }) {
  if (!list || list.length === 0) return <span className="muted">unknown</span>;
  return (
    <ul style={{ margin: 0, paddingLeft: "1rem" }}>
      {list.map((t) => (
        <li key={t.name}>
          <code>{t.name}</code> {t.datatype} [{(t.shape ?? []).join(", ")}]
        </li>
      ))}
    </ul>
  );
}

export function Models() {
  const accel = useLoad(() => must(api.GET("/v1/accel")), []);
  const models = useLoad(() => must(api.GET("/v1/models")), []);
  const list = models.data?.models ?? [];
  return (
    <>
      <h1>AI models</h1>
      <div className="panel">
        <h2 style={{ marginTop: 0 }}>Accelerator</h2>
        <ProblemView error={accel.error} />
        {accel.data && (
          <>
            <p>
              <StatusBadge status={accel.data.state} /> {accel.data.kind} {accel.data.address && <code>{accel.data.address}</code>} · since {when(accel.data.since)} · restarts {accel.data.restarts}
            </p>
            {accel.data.reason && <p>{accel.data.reason}</p>}
            {accel.data.fix && (
              <p className="muted">
                To fix: <code>{accel.data.fix}</code>
              </p>
            )}
            {accel.data.last_error && <p className="field-error">{accel.data.last_error}</p>}
          </>
        )}
      </div>
      <ProblemView error={models.error} />
      <div className="panel">
        <h2 style={{ marginTop: 0 }}>Registered models</h2>
        {models.loading && !models.data ? (
          <Spinner />
        ) : list.length === 0 ? (
          <Empty title="No models registered">An admin registers a model with PUT /v1/models/&lt;name&gt; and the path of its ONNX file on the server.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Model</th>
                <th>Inputs</th>
                <th>Outputs</th>
              </tr>
            </thead>
            <tbody>
              {list.map((m) => (
                <tr key={m.name}>
                  <td>
                    <strong>{m.name}</strong> {m.version && <span className="muted">v{m.version}</span>}
                    <div className="muted">{m.description}</div>
                    {m.metadata_error && <div className="field-error">{m.metadata_error}</div>}
                  </td>
                  <td>
                    <Tensors list={m.inputs} />
                  </td>
                  <td>
                    <Tensors list={m.outputs} />
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
