// A form generated from a JSON Schema (a module's inputs or config). It
// covers what module schemas use: an object of strings, numbers,
// integers, booleans and enums, with descriptions and defaults. Anything
// else (nested objects, arrays, schemas that are not objects) is edited
// as JSON, so every schema can still be filled in.
import { useId, useState } from "react";

export type JSONSchema = {
  type?: string | string[];
  properties?: Record<string, JSONSchema>;
  required?: string[];
  description?: string;
  title?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
};

type Props = {
  schema: JSONSchema | undefined | null;
  value: unknown;
  onChange: (v: unknown) => void;
  /** errors by property name (from a server problem), shown beside the field. */
  errors?: Record<string, string>;
  idPrefix?: string;
};

function kind(s: JSONSchema): string {
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  if (s.enum) return "enum";
  return t ?? "any";
}

/** isFormable reports whether a schema gets fields rather than a JSON box. */
export function isFormable(schema: JSONSchema | undefined | null): boolean {
  return !!schema && kind(schema) === "object" && !!schema.properties;
}

/**
 * defaults returns the value a fresh form starts with: the defaults of
 * required properties. Optional ones stay unset (their default shows as
 * the placeholder): the module applies its own defaults, and sending one
 * can mean something (stable_diffusion_xl refuses a strength without an
 * init_image).
 */
export function defaults(schema: JSONSchema | undefined | null): unknown {
  if (!isFormable(schema)) return schema?.default ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(schema!.properties!)) {
    if (p.default !== undefined && schema!.required?.includes(k)) out[k] = p.default;
  }
  return out;
}

export function SchemaForm({ schema, value, onChange, errors = {}, idPrefix }: Props) {
  const auto = useId();
  const prefix = idPrefix ?? auto;
  if (!isFormable(schema)) {
    return <JsonField id={`${prefix}-json`} label={schema?.description ? `JSON (${schema.description})` : "JSON"} value={value} onChange={onChange} error={errors[""]} />;
  }
  const obj = (value && typeof value === "object" ? value : {}) as Record<string, unknown>;
  const set = (k: string, v: unknown) => {
    const next = { ...obj };
    if (v === undefined || v === "") delete next[k];
    else next[k] = v;
    onChange(next);
  };
  const props = Object.entries(schema!.properties!);
  if (props.length === 0) return <p className="muted">This schema has no fields.</p>;
  return (
    <div className="schema-form">
      {props.map(([name, p]) => {
        const id = `${prefix}-${name}`;
        const req = schema!.required?.includes(name);
        const label = (
          <label htmlFor={id}>
            {p.title ?? name}
            {req && <span aria-hidden="true"> *</span>}
          </label>
        );
        const help = p.description ? <small id={`${id}-help`}>{p.description}</small> : null;
        const err = errors[name] ? (
          <small className="field-error" role="alert">
            {errors[name]}
          </small>
        ) : null;
        const k = kind(p);
        let input;
        if (k === "boolean") {
          return (
            <div className="field check" key={name}>
              <input id={id} type="checkbox" checked={obj[name] === true} onChange={(e) => set(name, e.target.checked)} aria-describedby={help ? `${id}-help` : undefined} />
              {label}
              {help}
              {err}
            </div>
          );
        } else if (k === "enum") {
          input = (
            <select id={id} aria-required={req} value={obj[name] === undefined ? "" : String(obj[name])} onChange={(e) => set(name, p.enum!.find((x) => String(x) === e.target.value))}>
              <option value="">{p.default !== undefined ? `(default: ${String(p.default)})` : "(not set)"}</option>
              {p.enum!.map((x) => (
                <option key={String(x)} value={String(x)}>
                  {String(x)}
                </option>
              ))}
            </select>
          );
        } else if (k === "integer" || k === "number") {
          input = (
            <input
              id={id}
              type="number"
              aria-required={req}
              step={k === "integer" ? 1 : "any"}
              min={p.minimum}
              max={p.maximum}
              placeholder={p.default !== undefined ? String(p.default) : undefined}
              value={obj[name] === undefined ? "" : String(obj[name])}
              onChange={(e) => set(name, e.target.value === "" ? undefined : Number(e.target.value))}
            />
          );
        } else if (k === "string") {
          input = (
            <input id={id} type="text" aria-required={req} placeholder={p.default !== undefined ? String(p.default) : undefined} value={(obj[name] as string) ?? ""} onChange={(e) => set(name, e.target.value)} />
          );
        } else {
          return (
            <div className="field" key={name}>
              <JsonField id={id} label={`${p.title ?? name} (JSON)`} value={obj[name]} onChange={(v) => set(name, v)} error={errors[name]} />
              {help}
            </div>
          );
        }
        return (
          <div className="field" key={name}>
            {label}
            {input}
            {help}
            {err}
          </div>
        );
      })}
    </div>
  );
}

/** JsonField edits any JSON value as text and reports parse errors as you type. */
export function JsonField({ id, label, value, onChange, error }: { id: string; label: string; value: unknown; onChange: (v: unknown) => void; error?: string }) {
  const [text, setText] = useState(() => (value === undefined ? "" : JSON.stringify(value, null, 2)));
  const [parseError, setParseError] = useState("");
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        rows={5}
        spellCheck={false}
        value={text}
        aria-invalid={!!(parseError || error)}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim() === "") {
            setParseError("");
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(e.target.value));
            setParseError("");
          } catch (err) {
            setParseError(`Not JSON yet: ${(err as Error).message}`);
          }
        }}
      />
      {(parseError || error) && (
        <small className="field-error" role="alert">
          {parseError || error}
        </small>
      )}
    </div>
  );
}
