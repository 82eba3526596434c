import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import { ProblemError } from "../api/client";
import { ProblemView } from "../components/ui";
import { match } from "../router";
import { runsPerDay } from "./Dashboard";
import { requestedItems } from "./Modules";
import { layout, withoutEmptyFields } from "./Workflows";

afterEach(cleanup);

describe("ProblemView", () => {
  it("shows an RFC 9457 problem with each location it names", () => {
    const err = new ProblemError({
      title: "Unprocessable Entity",
      status: 422,
      detail: "manifest.id: not a valid id",
      errors: [{ location: "manifest.id", message: "not a valid id" }],
    });
    render(<ProblemView error={err} hint="Fix the file and upload again." />);
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("Unprocessable Entity");
    expect(alert.textContent).toContain("(422)");
    expect(alert.querySelector("code")?.textContent).toBe("manifest.id");
    expect(alert.textContent).toContain("Fix the file and upload again.");
    expect(err.fieldErrors()).toEqual({ "manifest.id": "not a valid id" });
  });
});

describe("the workflow editor's model", () => {
  it("lays nodes out in columns by depth", () => {
    const pos = layout(
      [
        { id: "a", module: "echo@1.0.0" },
        { id: "b", module: "echo@1.0.0" },
        { id: "c", module: "echo@1.0.0" },
      ],
      [
        { from: "a", to: "b" },
        { from: "b", to: "c" },
        { from: "a", to: "c" },
      ],
    );
    expect(pos.a.x).toBeLessThan(pos.b.x);
    expect(pos.b.x).toBeLessThan(pos.c.x);
  });

  it("sends blank mapping fields as unmapped", () => {
    const d = withoutEmptyFields({
      name: "w",
      nodes: [{ id: "t", module: "text_template@1.0.0", input: { fields: { template: '"hi"', data: " " } } }],
    });
    expect(d.nodes![0].input).toEqual({ fields: { template: '"hi"' } });
  });
});

describe("capabilities", () => {
  it("lists each requested capability once, by kind", () => {
    expect(requestedItems({ kv: true, allowed_outbound_hosts: ["https://api.example.com"], secrets: ["TOKEN"], accel: { models: ["ppocr_det"] } }).map((i) => i.key)).toEqual([
      "kv",
      "host:https://api.example.com",
      "secret:TOKEN",
      "model:ppocr_det",
    ]);
    expect(requestedItems({})).toEqual([]);
  });
});

describe("dashboard", () => {
  it("counts runs per day by outcome over the last 14 days", () => {
    const now = new Date(2026, 10, 24, 12);
    const at = (d: number) => new Date(2026, 10, d, 9).toISOString();
    const bars = runsPerDay(
      [
        { id: "1", workflow_id: "w", version: 1, status: "succeeded", trigger: "manual", created_at: at(24) },
        { id: "2", workflow_id: "w", version: 1, status: "failed", trigger: "manual", created_at: at(24) },
        { id: "3", workflow_id: "w", version: 1, status: "running", trigger: "manual", created_at: at(20) },
        { id: "4", workflow_id: "w", version: 1, status: "succeeded", trigger: "manual", created_at: at(1) },
      ],
      now,
    );
    expect(bars).toHaveLength(14);
    expect(bars[13].values.map((v) => v.value)).toEqual([1, 1, 0]);
    expect(bars[9].values.map((v) => v.value)).toEqual([0, 0, 1]);
    expect(bars.reduce((n, b) => n + b.values.reduce((m, v) => m + v.value, 0), 0)).toBe(3);
  });
});

describe("router", () => {
  it("matches patterns and decodes parameters", () => {
    expect(match("/runs/:id", "/runs/run_1")).toEqual({ id: "run_1" });
    expect(match("/workflows/:id", "/workflows/a%20b")).toEqual({ id: "a b" });
    expect(match("/runs/:id", "/runs")).toBeNull();
    expect(match("/modules", "/runs")).toBeNull();
  });
});
