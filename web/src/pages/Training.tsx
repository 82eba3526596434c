// Datasets and training jobs. The console shows each page only when the
// server's /openapi.json lists its paths (api/features.ts): a server may
// be built without them.
import { useEffect, useState, type FormEvent } from "react";
import { api, must, ProblemError, type Schemas } from "../api/client";
import { useSession } from "../api/session";
import { LineChart } from "../components/LineChart";
import { Empty, Json, ProblemView, Spinner, StatusBadge, useLoad, when } from "../components/ui";
import { Link, navigate } from "../router";

type Dataset = Schemas["Dataset"];
type Epoch = Schemas["Epoch"];

export function Datasets() {
  const { can } = useSession();
  const list = useLoad(() => must(api.GET("/v1/datasets")), []);
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const upload = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    const form = new FormData();
    form.append("file", file);
    try {
      const meta = await must(
        api.POST("/v1/datasets", {
          params: { query: { name: name || undefined } },
          // The generated body type is the schema; the wire format is multipart.
          body: form as unknown as { file: string },
          bodySerializer: (b) => b as unknown as FormData,
        }),
      );
      navigate(`/ai/datasets/${meta.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const ds = list.data?.datasets ?? [];
  return (
    <>
      <h1>Datasets</h1>
      {can("datasets:write") && (
        <form className="panel" onSubmit={upload}>
          <h2 style={{ marginTop: 0 }}>Upload a dataset</h2>
          <div className="row">
            <label className="button" htmlFor="ds-file">
              Choose a CSV, TSV, JSONL, text or zip file
            </label>
            <input id="ds-file" className="file-input" type="file" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
            <span className="muted">{file ? file.name : "No file chosen."}</span>
          </div>
          <div className="field" style={{ maxWidth: 360, marginTop: "0.5rem" }}>
            <label htmlFor="ds-name">Name (optional)</label>
            <input id="ds-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="the file's name" />
          </div>
          <ProblemView error={error} />
          <button className="primary" type="submit" disabled={!file || busy}>
            {busy ? "Importing…" : "Upload"}
          </button>
          {busy && <progress aria-label="Importing" />}
        </form>
      )}
      <ProblemView error={list.error} />
      <div className="panel">
        {list.loading && !list.data ? (
          <Spinner />
        ) : ds.length === 0 ? (
          <Empty title="No datasets">Upload labelled examples (a CSV with text and label columns, say) to train a classifier on them.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Dataset</th>
                <th>Latest version</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {ds.map((d) => (
                <tr key={d.id}>
                  <td>
                    <Link to={`/ai/datasets/${d.id}`}>{d.name}</Link> <code className="muted">{d.id}</code>
                  </td>
                  <td>v{d.latest_version}</td>
                  <td>{when(d.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

export function DatasetDetail({ id }: { id: string }) {
  const ds = useLoad(() => must(api.GET("/v1/datasets/{id}", { params: { path: { id } } })), [id]);
  const [version, setVersion] = useState(0);
  const [split, setSplit] = useState<"train" | "validation">("train");
  const [offset, setOffset] = useState(0);
  const v = version || ds.data?.latest_version || 0;
  const meta = useLoad(() => (v ? must(api.GET("/v1/datasets/{id}/versions/{version}", { params: { path: { id, version: v } } })) : Promise.resolve(null)), [id, v]);
  const rows = useLoad(
    () => (v ? must(api.GET("/v1/datasets/{id}/versions/{version}/rows", { params: { path: { id, version: v }, query: { split, offset, limit: 20 } } })) : Promise.resolve(null)),
    [id, v, split, offset],
  );
  if (ds.error) return <ProblemView error={ds.error} />;
  if (!ds.data) return <Spinner />;
  const m = meta.data;
  const balance = Object.entries(m?.stats.class_balance ?? {});
  const most = Math.max(1, ...balance.map(([, n]) => n));
  return (
    <>
      <div className="spread">
        <h1>
          {ds.data.name} <code className="muted">{id}</code>
        </h1>
        <div className="row">
          <label htmlFor="ds-version">Version</label>
          <select id="ds-version" style={{ width: "auto" }} value={v} onChange={(e) => setVersion(Number(e.target.value))}>
            {(ds.data.versions ?? []).map((x) => (
              <option key={x.version} value={x.version}>
                v{x.version}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ProblemView error={meta.error} />
      {m && (
        <div className="grid">
          <div className="panel">
            <h2 style={{ marginTop: 0 }}>Rows</h2>
            <p>
              {m.rows} rows: {m.train_rows} train, {m.validation_rows} validation ({Math.round(m.validation_fraction * 100)}%)
            </p>
            <p className="muted">
              From {m.source} ({m.format}); texts from <code>{m.text_column}</code>, labels from <code>{m.label_column}</code>. Average length {m.stats.average_length.toFixed(0)} characters.
            </p>
            <p className="muted">
              Duplicates {m.stats.duplicates} ({m.stats.conflicting_duplicates} with a different label). Redacted: {(m.redacted ?? []).join(", ") || "nothing"}.
            </p>
          </div>
          <div className="panel">
            <h2 style={{ marginTop: 0 }}>Labels</h2>
            <table>
              <tbody>
                {balance.map(([label, n]) => (
                  <tr key={label}>
                    <td>{label}</td>
                    <td style={{ width: "60%" }}>
                      <div style={{ background: "var(--accent)", height: 10, borderRadius: 3, width: `${(n / most) * 100}%` }} title={`${n}`} />
                    </td>
                    <td>{n}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
      <div className="panel">
        <div className="spread">
          <h2 style={{ marginTop: 0 }}>Preview</h2>
          <div className="row">
            <label htmlFor="ds-split">Split</label>
            <select id="ds-split" style={{ width: "auto" }} value={split} onChange={(e) => (setSplit(e.target.value as "train" | "validation"), setOffset(0))}>
              <option value="train">train</option>
              <option value="validation">validation</option>
            </select>
            <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - 20))}>
              Previous
            </button>
            <button type="button" disabled={!rows.data || offset + 20 >= rows.data.total} onClick={() => setOffset(offset + 20)}>
              Next
            </button>
          </div>
        </div>
        <ProblemView error={rows.error} />
        {rows.data && (
          <>
            <p className="muted">
              Rows {rows.data.total ? offset + 1 : 0}–{Math.min(offset + 20, rows.data.total)} of {rows.data.total}
            </p>
            <table>
              <tbody>
                {(rows.data.rows ?? []).map((r, i) => (
                  <tr key={i}>
                    <td style={{ whiteSpace: "nowrap", width: "15%" }}>{r.label}</td>
                    <td>{r.text}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </div>
    </>
  );
}

export function TrainingJobs() {
  const { can } = useSession();
  const jobs = useLoad(() => must(api.GET("/v1/training-jobs")), []);
  const datasets = useLoad(() => must(api.GET("/v1/datasets")).catch(() => ({ datasets: [] as Dataset[] })), []);
  const [dataset, setDataset] = useState("");
  const [model, setModel] = useState("");
  const [base, setBase] = useState("");
  const [epochs, setEpochs] = useState(10);
  const [error, setError] = useState<unknown>(null);
  const ds = datasets.data?.datasets ?? [];
  const chosen = ds.find((d) => d.id === dataset) ?? ds[0];
  const start = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const job = await must(
        api.POST("/v1/training-jobs", {
          body: {
            // A base model makes it a fine-tuning job (docs/training.md).
            ...(base ? { task: "fine_tune_onnx" as const, base_model: base } : { task: "text_classification" as const }),
            dataset_id: chosen!.id,
            dataset_version: chosen!.latest_version,
            model_name: model,
            // The API requires every field; zero means "the default".
            hyperparameters: { epochs, learning_rate: 0, batch_size: 0, seed: 0, embedding_dim: 0, buckets: 0, ngrams: 0, char_ngram_min: 0, char_ngram_max: 0, max_features: 0, patience: 0 },
          },
        }),
      );
      navigate(`/ai/training/${job.id}`);
    } catch (err) {
      setError(err);
    }
  };
  const fields = error instanceof ProblemError ? error.fieldErrors() : {};
  const list = jobs.data?.jobs ?? [];
  return (
    <>
      <h1>Training jobs</h1>
      {can("training:write") && (
        <form className="panel" onSubmit={start}>
          <h2 style={{ marginTop: 0 }}>Train a text classifier</h2>
          {ds.length === 0 ? (
            <Empty title="No dataset to train on">
              Upload one under <Link to="/ai/datasets">Datasets</Link> first.
            </Empty>
          ) : (
            <>
              <div className="row" style={{ alignItems: "flex-start" }}>
                <div className="field">
                  <label htmlFor="tj-dataset">Dataset</label>
                  <select id="tj-dataset" value={chosen?.id} onChange={(e) => setDataset(e.target.value)}>
                    {ds.map((d) => (
                      <option key={d.id} value={d.id}>
                        {d.name} (v{d.latest_version})
                      </option>
                    ))}
                  </select>
                </div>
                <div className="field">
                  <label htmlFor="tj-model">Model name</label>
                  <input id="tj-model" value={model} onChange={(e) => setModel(e.target.value)} required placeholder="spam-filter" aria-invalid={!!fields["body.model_name"]} />
                  {fields["body.model_name"] && <small className="field-error">{fields["body.model_name"]}</small>}
                </div>
                <div className="field">
                  <label htmlFor="tj-base">Fine-tune from (optional)</label>
                  <input id="tj-base" value={base} onChange={(e) => setBase(e.target.value)} placeholder="a registered classifier" aria-invalid={!!fields["body.base_model"]} />
                  {fields["body.base_model"] && <small className="field-error">{fields["body.base_model"]}</small>}
                </div>
                <div className="field">
                  <label htmlFor="tj-epochs">Epochs</label>
                  <input id="tj-epochs" type="number" min={1} max={1000} value={epochs} onChange={(e) => setEpochs(Number(e.target.value))} />
                </div>
              </div>
              <ProblemView error={error} />
              <button className="primary" type="submit" disabled={!model}>
                Start training
              </button>
            </>
          )}
        </form>
      )}
      <ProblemView error={jobs.error} />
      <div className="panel">
        {jobs.loading && !jobs.data ? (
          <Spinner />
        ) : list.length === 0 ? (
          <Empty title="No training jobs">Start one above; its loss and accuracy are charted live.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Job</th>
                <th>Model</th>
                <th>State</th>
                <th>Accuracy</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {list.map((j) => (
                <tr key={j.id}>
                  <td>
                    <Link to={`/ai/training/${j.id}`}>
                      <code>{j.id}</code>
                    </Link>
                  </td>
                  <td>{j.model_name}</td>
                  <td>
                    <StatusBadge status={j.state} />
                  </td>
                  <td>{j.result ? `${(j.result.validation_accuracy * 100).toFixed(1)}%` : ""}</td>
                  <td>{when(j.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

// Training jobs spell it "cancelled" (runs: "canceled").
const finished = (s: Schemas["TrainingJob"]["state"]) => s === "succeeded" || s === "failed" || s === "cancelled";

export function TrainingJobDetail({ id }: { id: string }) {
  const { can } = useSession();
  const job = useLoad(() => must(api.GET("/v1/training-jobs/{id}", { params: { path: { id } } })), [id]);
  const [epochs, setEpochs] = useState<Epoch[]>([]);
  const [error, setError] = useState<unknown>(null);
  const j = job.data;
  useEffect(() => {
    if (j) setEpochs(j.epochs ?? []);
  }, [j]);
  const live = !!j && !finished(j.state);
  useEffect(() => {
    if (!live) return;
    const es = new EventSource(`/v1/training-jobs/${encodeURIComponent(id)}/events`);
    es.onmessage = (m) => {
      const e = JSON.parse(m.data) as { type: string; epoch?: Epoch };
      if (e.type === "epoch" && e.epoch) setEpochs((list) => (list.some((x) => x.epoch === e.epoch!.epoch) ? list : [...list, e.epoch!]));
      if (e.type === "finished" || e.type === "error") {
        es.close();
        job.reload();
      }
    };
    return () => es.close();
  }, [id, live]);
  if (job.error) return <ProblemView error={job.error} />;
  if (!j) return <Spinner />;
  const cancel = async () => {
    try {
      await must(api.POST("/v1/training-jobs/{id}/cancel", { params: { path: { id } } }));
      job.reload();
    } catch (e) {
      setError(e);
    }
  };
  const total = epochs[epochs.length - 1]?.epochs ?? 0;
  return (
    <>
      <div className="spread">
        <h1>
          Training <code>{j.id}</code> <StatusBadge status={j.state} />
        </h1>
        {live && can("training:write") && (
          <button className="danger" type="button" onClick={cancel}>
            Cancel
          </button>
        )}
      </div>
      <p className="muted">
        {j.task} on <Link to={`/ai/datasets/${j.dataset_id}`}>{j.dataset_id}</Link> v{j.dataset_version} → model <code>{j.model_name}</code> · created {when(j.created_at)}
      </p>
      {j.error && (
        <div className="problem" role="alert">
          {j.error}
        </div>
      )}
      <ProblemView error={error} />
      {live && total > 0 && <progress value={epochs.length} max={total} aria-label="Epochs done" />}
      <div className="grid">
        <div className="panel">
          <h2 style={{ marginTop: 0 }}>Training loss</h2>
          {epochs.length === 0 ? <p className="muted">Waiting for the first epoch…</p> : <LineChart title="Training loss per epoch" series={[{ name: "loss", points: epochs.map((e) => e.train_loss), className: "loss" }]} />}
        </div>
        <div className="panel">
          <h2 style={{ marginTop: 0 }}>Validation accuracy</h2>
          {epochs.length === 0 ? (
            <p className="muted">Waiting for the first epoch…</p>
          ) : (
            <LineChart title="Validation accuracy per epoch" max={1} series={[{ name: "accuracy", points: epochs.map((e) => e.validation_accuracy), className: "acc" }]} />
          )}
        </div>
      </div>
      {j.result && (
        <div className="panel">
          <h2 style={{ marginTop: 0 }}>Result</h2>
          <p>
            Validation accuracy {(j.result.validation_accuracy * 100).toFixed(1)}% after {j.result.epochs_run} epochs (best: epoch {j.result.best_epoch}
            {j.result.stopped_early ? ", stopped early" : ""}). The model is registered as <Link to="/ai/models">{j.model_name}</Link>.
          </p>
          <Json value={j.result} />
        </div>
      )}
    </>
  );
}
