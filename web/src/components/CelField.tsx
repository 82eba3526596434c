import { useEffect, useState } from "react";
import { api } from "../api/client";

/**
 * CelField edits a CEL expression and checks it with the server while the
 * user types (POST /v1/expressions/validate, debounced), so a typo shows
 * before the workflow is saved.
 */
export function CelField({
  id,
  label,
  value,
  onChange,
  context,
  help,
  serverError,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  context: "mapping" | "edge";
  help?: string;
  serverError?: string;
}) {
  const [check, setCheck] = useState<{ valid: boolean; message?: string } | null>(null);
  useEffect(() => {
    if (!value.trim()) {
      setCheck(null);
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      api
        .POST("/v1/expressions/validate", { body: { expression: value, context } })
        .then((r) => live && r.data && setCheck({ valid: r.data.valid, message: r.data.message }))
        .catch(() => undefined);
    }, 250);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [value, context]);
  const error = check && !check.valid ? check.message : serverError;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea id={id} rows={2} spellCheck={false} value={value} onChange={(e) => onChange(e.target.value)} aria-invalid={!!error} aria-describedby={`${id}-status`} />
      <small id={`${id}-status`} className={error ? "field-error" : check?.valid ? "field-ok" : undefined} role={error ? "alert" : undefined}>
        {error ? error : check?.valid ? "✓ valid CEL" : help}
      </small>
    </div>
  );
}
