import { memo, useCallback, useEffect, useMemo, useState, type DragEvent, type FormEvent } from "react";
import {
  Background,
  Controls,
  Handle,
  Position,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  type Connection,
  type EdgeChange,
  type NodeChange,
  type NodeProps,
} from "@xyflow/react";
import { Plus, Trash2 } from "lucide-react";
import { api, must, ProblemError, type Schemas } from "../api/client";
import { useSession } from "../api/session";
import { CelField } from "../components/CelField";
import { lineDiff } from "../components/diff";
import { JsonField, SchemaForm, type JSONSchema } from "../components/SchemaForm";
import { Empty, ProblemView, Spinner, useLoad, when } from "../components/ui";
import { Link, navigate, useLocation } from "../router";

type Definition = Schemas["Definition"];
type WfNode = Schemas["Node"];
type WfEdge = Schemas["Edge"];
type Manifest = Schemas["Manifest"];
type XY = { x: number; y: number };

export function Workflows() {
  const { can } = useSession();
  const list = useLoad(() => must(api.GET("/v1/workflows")), []);
  const [newId, setNewId] = useState("");
  const create = (e: FormEvent) => {
    e.preventDefault();
    if (newId.trim()) navigate(`/workflows/${encodeURIComponent(newId.trim())}?new=1`);
  };
  const wfs = list.data?.workflows ?? [];
  return (
    <>
      <h1>Workflows</h1>
      {can("workflows:write") && (
        <form className="panel row" onSubmit={create}>
          <label htmlFor="new-wf">New workflow id</label>
          <input id="new-wf" style={{ width: 240 }} value={newId} onChange={(e) => setNewId(e.target.value)} placeholder="e.g. resize-images" pattern="[a-z0-9][a-z0-9_\-]*" title="lower-case letters, digits, - and _" />
          <button className="primary" type="submit" disabled={!newId.trim()}>
            <Plus size={16} /> Create
          </button>
        </form>
      )}
      <ProblemView error={list.error} />
      <div className="panel">
        {list.loading && !list.data ? (
          <Spinner />
        ) : wfs.length === 0 ? (
          <Empty title="No workflows yet">Create one above: you will get a canvas to drag modules onto.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Workflow</th>
                <th>Published</th>
                <th>Updated</th>
              </tr>
            </thead>
            <tbody>
              {wfs.map((w) => (
                <tr key={w.id}>
                  <td>
                    <Link to={`/workflows/${encodeURIComponent(w.id)}`}>{w.draft.name}</Link> <code className="muted">{w.id}</code>
                  </td>
                  <td>{w.latest_version ? `v${w.latest_version}` : <span className="muted">draft only</span>}</td>
                  <td>{when(w.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

/** layout places nodes in columns by their depth in the graph. */
export function layout(nodes: WfNode[], edges: WfEdge[]): Record<string, XY> {
  const depth: Record<string, number> = {};
  for (const n of nodes) depth[n.id] = 0;
  for (let pass = 0; pass < nodes.length; pass++) {
    for (const e of edges) if (depth[e.to] !== undefined && depth[e.from] !== undefined) depth[e.to] = Math.max(depth[e.to], depth[e.from] + 1);
  }
  const rows: Record<number, number> = {};
  const out: Record<string, XY> = {};
  for (const n of nodes) {
    const d = depth[n.id];
    const r = (rows[d] = (rows[d] ?? -1) + 1);
    out[n.id] = { x: 40 + d * 240, y: 40 + r * 110 };
  }
  return out;
}

/**
 * withoutEmptyFields drops input-mapping fields left blank (the form
 * offers one per input property; a blank one means "not mapped"), so they
 * are not sent as empty expressions.
 */
export function withoutEmptyFields(d: Definition): Definition {
  return {
    ...d,
    nodes: (d.nodes ?? []).map((n) => {
      if (!n.input?.fields) return n;
      const fields = Object.fromEntries(Object.entries(n.input.fields).filter(([, v]) => v.trim() !== ""));
      return { ...n, input: { fields } };
    }),
  };
}

function outputPorts(m: Manifest | undefined, n: WfNode): string[] {
  const ports = m?.ports && m.ports.length > 0 ? [...m.ports] : ["default"];
  if (n.on_error === "route") ports.push("error");
  return ports;
}

type NodeData = { node: WfNode; manifest?: Manifest; problem?: string };

const ModuleNode = memo(function ModuleNode({ data, selected }: NodeProps) {
  const d = data as NodeData;
  const ports = outputPorts(d.manifest, d.node);
  return (
    <div className={`wf-node${selected ? " selected" : ""}`} data-testid={`node-${d.node.id}`} style={d.problem ? { borderColor: "var(--bad)" } : undefined}>
      <Handle type="target" position={Position.Left} id="in" aria-label={`input of ${d.node.id}`} />
      <div>
        <span aria-hidden>{d.manifest?.icon} </span>
        <strong>{d.node.id}</strong>
      </div>
      <div className="mod">{d.node.module}</div>
      {d.problem && <div className="field-error">{d.problem}</div>}
      {ports.map((p, i) => (
        <Handle key={p} type="source" position={Position.Right} id={p} style={{ top: `${((i + 1) * 100) / (ports.length + 1)}%` }} title={`${p} output`} aria-label={`${p} output of ${d.node.id}`} />
      ))}
    </div>
  );
});
const nodeTypes = { module: ModuleNode };

export function WorkflowEditor({ id }: { id: string }) {
  return (
    <ReactFlowProvider>
      <Editor id={id} />
    </ReactFlowProvider>
  );
}

type Selection = { kind: "node"; id: string } | { kind: "edge"; index: number } | null;
type Tab = "editor" | "history" | "run";

function Editor({ id }: { id: string }) {
  const { query } = useLocation();
  const { can } = useSession();
  const isNew = query.get("new") === "1";
  const wf = useLoad(() => (isNew ? Promise.resolve(null) : must(api.GET("/v1/workflows/{id}", { params: { path: { id } } }))), [id, isNew]);
  const modules = useLoad(() => must(api.GET("/v1/modules")), []);
  const [def, setDef] = useState<Definition | null>(null);
  const [pos, setPos] = useState<Record<string, XY>>({});
  // The nodes' measured sizes, kept as a controlled flow must: React Flow
  // shows a node only once it has a size, and the node objects below are
  // made afresh on every render, so a size it measured once would be lost
  // (the node then stayed hidden until a reload).
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});
  const [sel, setSel] = useState<Selection>(null);
  const [manifests, setManifests] = useState<Record<string, Manifest>>({});
  const [problem, setProblem] = useState<unknown>(null);
  const [notice, setNotice] = useState("");
  const [dirty, setDirty] = useState(false);
  const [tab, setTab] = useState<Tab>("editor");
  const flow = useReactFlow();
  const editable = can("workflows:write");

  useEffect(() => {
    if (isNew) {
      setDef({ name: id, nodes: [], edges: [] });
      return;
    }
    if (wf.data) {
      const d = wf.data.draft;
      setDef({ ...d, nodes: d.nodes ?? [], edges: d.edges ?? [] });
      const saved = localStorage.getItem(`millrace.layout.${id}`);
      const auto = layout(d.nodes ?? [], d.edges ?? []);
      setPos(saved ? { ...auto, ...JSON.parse(saved) } : auto);
    }
  }, [wf.data, isNew, id]);

  useEffect(() => {
    if (Object.keys(pos).length) localStorage.setItem(`millrace.layout.${id}`, JSON.stringify(pos));
  }, [pos, id]);

  // Fetch the manifest of every module version the graph uses.
  useEffect(() => {
    for (const n of def?.nodes ?? []) {
      if (manifests[n.module]) continue;
      const [mid, ver] = n.module.split("@");
      if (!mid || !ver) continue;
      api.GET("/v1/modules/{id}/versions/{version}", { params: { path: { id: mid, version: ver } } }).then((r) => {
        if (r.data) setManifests((m) => ({ ...m, [n.module]: r.data!.manifest }));
      });
    }
  }, [def, manifests]);

  const update = (f: (d: Definition) => Definition) => {
    setDef((d) => (d ? f(d) : d));
    setDirty(true);
    setNotice("");
  };
  const nodes = def?.nodes ?? [];
  const edges = def?.edges ?? [];

  // Server problems located at nodes[i] or edges[j], shown on the canvas.
  const located = useMemo(() => {
    const out: { nodes: Record<number, string>; edges: Record<number, string>; other: string[] } = { nodes: {}, edges: {}, other: [] };
    if (!(problem instanceof ProblemError)) return out;
    for (const e of problem.problem.errors ?? []) {
      const m = /^body\.(nodes|edges)\[(\d+)\]/.exec(e.location ?? "");
      const msg = `${(e.location ?? "").replace(/^body\.(nodes|edges)\[\d+\]\.?/, "")} ${e.message ?? ""}`.trim();
      if (m) out[m[1] as "nodes" | "edges"][Number(m[2])] = msg;
      else out.other.push(msg);
    }
    return out;
  }, [problem]);

  const addNode = useCallback(
    (module: string, at?: XY) => {
      const base = module.split("@")[0].replace(/[^a-z0-9_-]/g, "_");
      let nid = base;
      for (let i = 2; nodes.some((n) => n.id === nid); i++) nid = `${base}_${i}`;
      update((d) => ({ ...d, nodes: [...(d.nodes ?? []), { id: nid, module }] }));
      setPos((p) => ({ ...p, [nid]: at ?? { x: 40 + (nodes.length % 4) * 240, y: 40 + Math.floor(nodes.length / 4) * 110 + (nodes.length % 2) * 40 } }));
      setSel({ kind: "node", id: nid });
      // Keep every node in view when one is added with the keyboard.
      if (!at) setTimeout(() => flow.fitView({ maxZoom: 1, padding: 0.25, duration: 0 }), 0);
    },
    [nodes],
  );

  const connect = (from: string, to: string, port?: string | null) => {
    if (from === to) return;
    const p = port && port !== "default" ? port : undefined;
    if (edges.some((e) => e.from === from && e.to === to && (e.port ?? undefined) === p)) return;
    update((d) => ({ ...d, edges: [...(d.edges ?? []), { from, to, ...(p ? { port: p } : {}) }] }));
  };

  const rfNodes = nodes.map((n, i) => ({
    id: n.id,
    type: "module",
    position: pos[n.id] ?? { x: 40, y: 40 },
    measured: measured[n.id],
    selected: sel?.kind === "node" && sel.id === n.id,
    data: { node: n, manifest: manifests[n.module], problem: located.nodes[i] } satisfies NodeData,
  }));
  const rfEdges = edges.map((e, i) => ({
    id: `e${i}`,
    source: e.from,
    target: e.to,
    sourceHandle: e.port || "default",
    targetHandle: "in",
    label: located.edges[i] ? "⚠ " + located.edges[i] : e.when ? `when ${e.when}` : e.port && e.port !== "default" ? e.port : undefined,
    selected: sel?.kind === "edge" && sel.index === i,
    style: located.edges[i] ? { stroke: "var(--bad)" } : undefined,
  }));

  const onNodesChange = (changes: NodeChange[]) => {
    for (const c of changes) {
      if (c.type === "position" && c.position) setPos((p) => ({ ...p, [c.id]: c.position! }));
      else if (c.type === "dimensions" && c.dimensions) setMeasured((m) => ({ ...m, [c.id]: c.dimensions! }));
      else if (c.type === "select" && c.selected) setSel({ kind: "node", id: c.id });
      else if (c.type === "remove" && editable) removeNode(c.id);
    }
  };
  const onEdgesChange = (changes: EdgeChange[]) => {
    for (const c of changes) {
      if (c.type === "select" && c.selected) setSel({ kind: "edge", index: Number(c.id.slice(1)) });
      else if (c.type === "remove" && editable) removeEdge(Number(c.id.slice(1)));
    }
  };
  const removeNode = (nid: string) => {
    update((d) => ({ ...d, nodes: (d.nodes ?? []).filter((n) => n.id !== nid), edges: (d.edges ?? []).filter((e) => e.from !== nid && e.to !== nid) }));
    setSel(null);
  };
  const removeEdge = (i: number) => {
    update((d) => ({ ...d, edges: (d.edges ?? []).filter((_, j) => j !== i) }));
    setSel(null);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    const module = e.dataTransfer.getData("application/x-millrace-module");
    if (module) addNode(module, flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  };

  const save = async () => {
    if (!def) return;
    setProblem(null);
    try {
      await must(api.PUT("/v1/workflows/{id}", { params: { path: { id } }, body: withoutEmptyFields(def) }));
      setDirty(false);
      setNotice("Draft saved.");
      if (isNew) navigate(`/workflows/${encodeURIComponent(id)}`);
      else wf.reload();
      return true;
    } catch (e) {
      setProblem(e);
      return false;
    }
  };
  const publish = async () => {
    if (dirty && !(await save())) return;
    try {
      const v = await must(api.POST("/v1/workflows/{id}/publish", { params: { path: { id } } }));
      setNotice(`Published version ${v.version}.`);
      wf.reload();
    } catch (e) {
      setProblem(e);
    }
  };

  if (wf.error) return <ProblemView error={wf.error} hint="Go back to Workflows and open one that exists, or create it." />;
  if (!def) return <Spinner />;
  const selNode = sel?.kind === "node" ? nodes.find((n) => n.id === sel.id) : undefined;
  const selEdgeIdx = sel?.kind === "edge" ? sel.index : -1;
  const selEdge = selEdgeIdx >= 0 ? edges[selEdgeIdx] : undefined;
  const palette = modules.data?.modules ?? [];

  return (
    <>
      <div className="spread">
        <h1>
          {def.name} <code className="muted">{id}</code>
        </h1>
        <div className="row">
          {dirty && <span className="muted">Unsaved changes</span>}
          {editable && (
            <>
              <button type="button" onClick={save}>
                Save draft
              </button>
              <button className="primary" type="button" onClick={publish}>
                Publish
              </button>
            </>
          )}
        </div>
      </div>
      <div className="tabs" role="tablist">
        {(["editor", "run", "history"] as Tab[]).map((t) => (
          <button key={t} type="button" role="tab" aria-selected={tab === t} onClick={() => setTab(t)}>
            {t === "editor" ? "Editor" : t === "run" ? "Run" : "Version history"}
          </button>
        ))}
      </div>
      {notice && (
        <p role="status" className="field-ok">
          {notice}
        </p>
      )}
      <ProblemView error={problem} hint={located.other.length === 0 && problem ? "Problems on nodes and edges are marked on the canvas; select one to fix it." : undefined} />
      {tab === "history" ? (
        <History id={id} draft={def} versions={wf.data?.versions ?? []} />
      ) : tab === "run" ? (
        <RunPanel id={id} latest={wf.data?.latest_version ?? 0} />
      ) : (
        <div className="editor">
          <aside className="palette" aria-label="Module palette">
            <h3 style={{ marginTop: 0 }}>Modules</h3>
            <p className="muted" style={{ marginTop: 0 }}>
              Drag onto the canvas, or press +.
            </p>
            {palette.length === 0 && <p className="muted">No modules: upload one under Modules.</p>}
            {palette.map((m) => (
              <div
                key={m.id}
                className="palette-item"
                draggable={editable}
                onDragStart={(e) => {
                  e.dataTransfer.setData("application/x-millrace-module", `${m.id}@${m.latest}`);
                  e.dataTransfer.effectAllowed = "move";
                }}
                title={m.description}
              >
                <span>
                  <span aria-hidden>{m.icon} </span>
                  {m.name}
                </span>
                {editable && (
                  <button type="button" className="icon" aria-label={`Add ${m.name}`} onClick={() => addNode(`${m.id}@${m.latest}`)}>
                    <Plus size={14} />
                  </button>
                )}
              </div>
            ))}
          </aside>
          <div className="canvas" onDragOver={(e) => e.preventDefault()} onDrop={onDrop} aria-label="Workflow canvas">
            {nodes.length === 0 && (
              <div style={{ position: "absolute", margin: "2rem", zIndex: 5 }} className="muted">
                Empty workflow: add modules from the palette, then drag from a node's right handle to another node's left handle to connect them.
              </div>
            )}
            <ReactFlow
              nodes={rfNodes}
              edges={rfEdges}
              nodeTypes={nodeTypes}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={(c: Connection) => editable && connect(c.source, c.target, c.sourceHandle)}
              onPaneClick={() => setSel(null)}
              nodesDraggable
              nodesConnectable={editable}
              deleteKeyCode={editable ? ["Delete", "Backspace"] : null}
              fitView={nodes.length > 0}
              fitViewOptions={{ maxZoom: 1 }}
              proOptions={{ hideAttribution: true }}
            >
              <Background />
              <Controls />
            </ReactFlow>
          </div>
          <aside className="inspector" aria-label="Inspector">
            {selNode ? (
              <NodeInspector
                key={selNode.id}
                node={selNode}
                index={nodes.indexOf(selNode)}
                manifest={manifests[selNode.module]}
                versions={palette.find((m) => m.id === selNode.module.split("@")[0])?.versions ?? []}
                others={nodes.filter((n) => n.id !== selNode.id).map((n) => n.id)}
                problem={problem}
                editable={editable}
                onChange={(next) => {
                  update((d) => ({
                    ...d,
                    nodes: (d.nodes ?? []).map((n) => (n.id === selNode.id ? next : n)),
                    edges: next.id === selNode.id ? d.edges : (d.edges ?? []).map((e) => ({ ...e, from: e.from === selNode.id ? next.id : e.from, to: e.to === selNode.id ? next.id : e.to })),
                  }));
                  if (next.id !== selNode.id) {
                    setPos((p) => ({ ...p, [next.id]: p[selNode.id] }));
                    setSel({ kind: "node", id: next.id });
                  }
                }}
                onConnect={(to) => connect(selNode.id, to)}
                onRemove={() => removeNode(selNode.id)}
              />
            ) : selEdge ? (
              <EdgeInspector
                key={selEdgeIdx}
                edge={selEdge}
                ports={outputPorts(manifests[nodes.find((n) => n.id === selEdge.from)?.module ?? ""], nodes.find((n) => n.id === selEdge.from) ?? { id: "", module: "" })}
                problem={located.edges[selEdgeIdx]}
                editable={editable}
                onChange={(e) => update((d) => ({ ...d, edges: (d.edges ?? []).map((x, j) => (j === selEdgeIdx ? e : x)) }))}
                onRemove={() => removeEdge(selEdgeIdx)}
              />
            ) : (
              <WorkflowSettings def={def} editable={editable} onChange={(d) => update(() => d)} />
            )}
          </aside>
        </div>
      )}
    </>
  );
}

function WorkflowSettings({ def, editable, onChange }: { def: Definition; editable: boolean; onChange: (d: Definition) => void }) {
  return (
    <>
      <h3 style={{ marginTop: 0 }}>Workflow</h3>
      <div className="field">
        <label htmlFor="wf-name">Name</label>
        <input id="wf-name" disabled={!editable} value={def.name} onChange={(e) => onChange({ ...def, name: e.target.value })} />
      </div>
      <div className="field">
        <label htmlFor="wf-desc">Description</label>
        <textarea id="wf-desc" disabled={!editable} rows={3} value={def.description ?? ""} onChange={(e) => onChange({ ...def, description: e.target.value || undefined })} />
      </div>
      <p className="muted">Select a node or an edge to edit it. Delete removes the selection.</p>
    </>
  );
}

function NodeInspector({
  node,
  index,
  manifest,
  versions,
  others,
  problem,
  editable,
  onChange,
  onConnect,
  onRemove,
}: {
  node: WfNode;
  index: number;
  manifest?: Manifest;
  versions: string[];
  others: string[];
  problem: unknown;
  editable: boolean;
  onChange: (n: WfNode) => void;
  onConnect: (to: string) => void;
  onRemove: () => void;
}) {
  const [mid, ver] = node.module.split("@");
  const mode = node.input?.expression !== undefined ? "expression" : node.input?.fields ? "fields" : "default";
  const [idText, setIdText] = useState(node.id);
  const [newField, setNewField] = useState("");
  const errs: Record<string, string> = {};
  if (problem instanceof ProblemError) {
    for (const [loc, msg] of Object.entries(problem.fieldErrors())) {
      const p = `body.nodes[${index}].`;
      if (loc.startsWith(p)) errs[loc.slice(p.length)] = msg;
    }
  }
  const configErrs: Record<string, string> = {};
  for (const [k, m] of Object.entries(errs)) if (k.startsWith("config")) configErrs[k.replace(/^config\.?/, "")] = m;
  const inputProps = Object.keys((manifest?.inputs as JSONSchema | undefined)?.properties ?? {});
  return (
    <>
      <div className="spread">
        <h3 style={{ margin: 0 }}>Node</h3>
        {editable && (
          <button type="button" className="danger icon" onClick={onRemove} aria-label={`Remove node ${node.id}`}>
            <Trash2 size={16} />
          </button>
        )}
      </div>
      <div className="field">
        <label htmlFor="node-id">Id</label>
        <input
          id="node-id"
          disabled={!editable}
          value={idText}
          onChange={(e) => setIdText(e.target.value)}
          onBlur={() => idText && idText !== node.id && onChange({ ...node, id: idText })}
          aria-invalid={!!errs.id}
        />
        {errs.id && <small className="field-error">{errs.id}</small>}
      </div>
      <div className="field">
        <label htmlFor="node-version">
          Module <code>{mid}</code> version
        </label>
        <select id="node-version" disabled={!editable} value={ver} onChange={(e) => onChange({ ...node, module: `${mid}@${e.target.value}` })}>
          {(versions.includes(ver) ? versions : [ver, ...versions]).map((v) => (
            <option key={v}>{v}</option>
          ))}
        </select>
        {errs.module && <small className="field-error">{errs.module}</small>}
      </div>
      {editable && others.length > 0 && (
        <div className="field">
          <label htmlFor="node-connect">Connect output to</label>
          <select id="node-connect" value="" onChange={(e) => e.target.value && onConnect(e.target.value)}>
            <option value="">(choose a node)</option>
            {others.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        </div>
      )}
      <fieldset disabled={!editable} style={{ border: "none", padding: 0, margin: 0 }}>
        <legend>
          <strong>Input</strong>
        </legend>
        <div className="field">
          <label htmlFor="node-input-mode">Input is</label>
          <select
            id="node-input-mode"
            value={mode}
            onChange={(e) => {
              const m = e.target.value;
              onChange({
                ...node,
                input: m === "expression" ? { expression: "input" } : m === "fields" ? { fields: Object.fromEntries(inputProps.map((p) => [p, ""])) } : undefined,
              });
            }}
          >
            <option value="default">default: the upstream output, else the run input</option>
            <option value="expression">one CEL expression</option>
            <option value="fields">one CEL expression per field</option>
          </select>
          {errs.input && <small className="field-error">{errs.input}</small>}
        </div>
        {mode === "expression" && (
          <CelField
            id="node-input-expr"
            label="Expression"
            context="mapping"
            value={node.input?.expression ?? ""}
            onChange={(v) => onChange({ ...node, input: { expression: v } })}
            help="Sees input, nodes.<id>.output and run."
            serverError={errs["input.expression"]}
          />
        )}
        {mode === "fields" && (
          <>
            {Object.entries(node.input?.fields ?? {}).map(([k, v]) => (
              <CelField
                key={k}
                id={`node-field-${k}`}
                label={`Field ${k}`}
                context="mapping"
                value={v}
                onChange={(nv) => onChange({ ...node, input: { fields: { ...(node.input?.fields ?? {}), [k]: nv } } })}
                serverError={errs[`input.fields.${k}`]}
              />
            ))}
            <div className="row">
              <input aria-label="New field name" placeholder="field name" value={newField} onChange={(e) => setNewField(e.target.value)} style={{ width: 140 }} />
              <button
                type="button"
                onClick={() => {
                  if (newField) onChange({ ...node, input: { fields: { ...(node.input?.fields ?? {}), [newField]: "" } } });
                  setNewField("");
                }}
              >
                Add field
              </button>
            </div>
          </>
        )}
        <h3>Config</h3>
        {manifest ? <SchemaForm schema={manifest.config as JSONSchema} value={node.config ?? {}} onChange={(c) => onChange({ ...node, config: c })} errors={configErrs} idPrefix="node-config" /> : <Spinner />}
        <div className="field">
          <label htmlFor="node-onerror">On error</label>
          <select id="node-onerror" value={node.on_error ?? "fail"} onChange={(e) => onChange({ ...node, on_error: e.target.value === "fail" ? undefined : (e.target.value as WfNode["on_error"]) })}>
            <option value="fail">fail the run</option>
            <option value="continue">continue with a null output</option>
            <option value="route">route to the error port</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="node-retries">Attempts (retries + 1)</label>
          <input
            id="node-retries"
            type="number"
            min={1}
            max={10}
            value={node.retry?.max_attempts ?? 1}
            onChange={(e) => onChange({ ...node, retry: Number(e.target.value) > 1 ? { ...(node.retry ?? {}), max_attempts: Number(e.target.value) } : undefined })}
          />
        </div>
      </fieldset>
      {Object.entries(errs)
        .filter(([k]) => !["id", "module", "input"].includes(k) && !k.startsWith("config") && !k.startsWith("input."))
        .map(([k, m]) => (
          <p key={k} className="field-error">
            {k}: {m}
          </p>
        ))}
    </>
  );
}

function EdgeInspector({ edge, ports, problem, editable, onChange, onRemove }: { edge: WfEdge; ports: string[]; problem?: string; editable: boolean; onChange: (e: WfEdge) => void; onRemove: () => void }) {
  return (
    <>
      <div className="spread">
        <h3 style={{ margin: 0 }}>
          Edge {edge.from} → {edge.to}
        </h3>
        {editable && (
          <button type="button" className="danger icon" onClick={onRemove} aria-label="Remove edge">
            <Trash2 size={16} />
          </button>
        )}
      </div>
      {problem && <p className="field-error">{problem}</p>}
      <div className="field">
        <label htmlFor="edge-port">From output port</label>
        <select id="edge-port" disabled={!editable} value={edge.port ?? "default"} onChange={(e) => onChange({ ...edge, port: e.target.value === "default" ? undefined : e.target.value })}>
          {ports.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
      </div>
      <CelField
        id="edge-when"
        label="Condition (when)"
        context="edge"
        value={edge.when ?? ""}
        onChange={(v) => editable && onChange({ ...edge, when: v || undefined })}
        help="Optional. A boolean CEL expression; sees output and port of the source node, plus input, nodes and run."
      />
    </>
  );
}

function RunPanel({ id, latest }: { id: string; latest: number }) {
  const { can } = useSession();
  const [input, setInput] = useState<unknown>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (!can("workflows:run")) return <Empty title="You cannot start runs">Your token lacks the workflows:run scope.</Empty>;
  if (!latest) return <Empty title="Not published yet">Publish the workflow first: runs always use a published version.</Empty>;
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const run = await must(api.POST("/v1/workflows/{id}/runs", { params: { path: { id } }, body: { input } }));
      navigate(`/runs/${run.id}`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <div className="panel" style={{ maxWidth: 640 }}>
      <p>Runs version {latest}, the latest published.</p>
      <JsonField id="run-input" label="Run input (JSON)" value={input} onChange={setInput} />
      <ProblemView error={error} />
      <button className="primary" type="button" onClick={start} disabled={busy}>
        {busy ? "Starting…" : "Start run"}
      </button>
    </div>
  );
}

function History({ id, draft, versions }: { id: string; draft: Definition; versions: number[] }) {
  const [a, setA] = useState<string>(versions.length ? String(versions[versions.length - 1]) : "draft");
  const [b, setB] = useState<string>("draft");
  const load = (v: string) => (v === "draft" ? Promise.resolve(draft) : must(api.GET("/v1/workflows/{id}/versions/{version}", { params: { path: { id, version: Number(v) } } })).then((x) => x.definition));
  const pair = useLoad(() => Promise.all([load(a), load(b)]), [a, b, draft]);
  const options = ["draft", ...[...versions].reverse().map(String)];
  if (versions.length === 0) return <Empty title="No published versions">Publish the draft to start a history; each version is kept unchanged.</Empty>;
  const diff = pair.data ? lineDiff(JSON.stringify(pair.data[0], null, 2), JSON.stringify(pair.data[1], null, 2)) : [];
  return (
    <div className="panel">
      <div className="row">
        <label htmlFor="diff-a">Compare</label>
        <select id="diff-a" style={{ width: "auto" }} value={a} onChange={(e) => setA(e.target.value)}>
          {options.map((o) => (
            <option key={o} value={o}>
              {o === "draft" ? "draft" : `v${o}`}
            </option>
          ))}
        </select>
        <label htmlFor="diff-b">with</label>
        <select id="diff-b" style={{ width: "auto" }} value={b} onChange={(e) => setB(e.target.value)}>
          {options.map((o) => (
            <option key={o} value={o}>
              {o === "draft" ? "draft" : `v${o}`}
            </option>
          ))}
        </select>
      </div>
      <ProblemView error={pair.error} />
      {diff.every((l) => l.op === " ") ? (
        <p className="muted">No differences.</p>
      ) : (
        <div className="diff" aria-label="Differences">
          {diff.map((l, i) => (
            <div key={i} className={l.op === "+" ? "add" : l.op === "-" ? "del" : undefined}>
              {l.op} {l.text}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
