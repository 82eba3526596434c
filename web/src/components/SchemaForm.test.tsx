import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { defaults, SchemaForm, type JSONSchema } from "./SchemaForm";

afterEach(cleanup);

// The kv_counter module's input schema, as its manifest declares it.
const counter: JSONSchema = {
  type: "object",
  properties: {
    key: { type: "string", default: "default", description: "The counter's name." },
    delta: { type: "integer", default: 1, description: "The amount to add; negative to subtract." },
    mode: { enum: ["add", "set"] },
    dry: { type: "boolean" },
    extra: { type: "object" },
  },
  required: ["key"],
};

function Harness({ schema, onValue, errors }: { schema: JSONSchema; onValue: (v: unknown) => void; errors?: Record<string, string> }) {
  const [v, setV] = useState<unknown>(defaults(schema));
  return (
    <SchemaForm
      schema={schema}
      value={v}
      errors={errors}
      idPrefix="t"
      onChange={(next) => {
        setV(next);
        onValue(next);
      }}
    />
  );
}

describe("SchemaForm", () => {
  it("makes one labelled control per property, typed by the schema", () => {
    let value: unknown;
    render(<Harness schema={counter} onValue={(v) => (value = v)} />);
    expect((screen.getByLabelText(/^key/) as HTMLInputElement).type).toBe("text");
    expect((screen.getByLabelText("delta") as HTMLInputElement).type).toBe("number");
    expect(screen.getByLabelText("mode").tagName).toBe("SELECT");
    expect((screen.getByLabelText("dry") as HTMLInputElement).type).toBe("checkbox");
    expect(screen.getByLabelText("extra (JSON)").tagName).toBe("TEXTAREA");
    expect(screen.getByText("The counter's name.")).toBeTruthy();

    fireEvent.change(screen.getByLabelText(/^key/), { target: { value: "visits" } });
    fireEvent.change(screen.getByLabelText("delta"), { target: { value: "3" } });
    fireEvent.change(screen.getByLabelText("mode"), { target: { value: "set" } });
    fireEvent.click(screen.getByLabelText("dry"));
    expect(value).toEqual({ key: "visits", delta: 3, mode: "set", dry: true });
  });

  it("starts from the defaults of required fields; optional ones show theirs as placeholders", () => {
    expect(defaults(counter)).toEqual({ key: "default" });
    render(<Harness schema={counter} onValue={() => undefined} />);
    expect((screen.getByLabelText("delta") as HTMLInputElement).placeholder).toBe("1");
    expect((screen.getByLabelText("delta") as HTMLInputElement).value).toBe("");
  });

  it("shows the server's error beside its field", () => {
    render(<Harness schema={counter} onValue={() => undefined} errors={{ delta: "must be an integer" }} />);
    expect(screen.getByRole("alert").textContent).toBe("must be an integer");
  });

  it("edits schemas that are not objects as JSON, reporting bad JSON as you type", () => {
    let value: unknown;
    render(<Harness schema={{ description: "Any JSON value." }} onValue={(v) => (value = v)} />);
    const box = screen.getByLabelText(/JSON/);
    fireEvent.change(box, { target: { value: '{"a": [1, 2' } });
    expect(screen.getByRole("alert").textContent).toMatch(/Not JSON yet/);
    fireEvent.change(box, { target: { value: '{"a": [1, 2]}' } });
    expect(value).toEqual({ a: [1, 2] });
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
