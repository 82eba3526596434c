import { describe, expect, it } from "vitest";
import { lineDiff } from "./diff";

describe("lineDiff", () => {
  it("keeps common lines and marks what was removed and added", () => {
    const a = ["{", '  "name": "greet",', '  "nodes": 1', "}"].join("\n");
    const b = ["{", '  "name": "greet v2",', '  "nodes": 1', "}"].join("\n");
    expect(lineDiff(a, b)).toEqual([
      { op: " ", text: "{" },
      { op: "-", text: '  "name": "greet",' },
      { op: "+", text: '  "name": "greet v2",' },
      { op: " ", text: '  "nodes": 1' },
      { op: " ", text: "}" },
    ]);
  });

  it("handles texts with nothing in common and empty texts", () => {
    expect(lineDiff("a", "b").map((l) => l.op)).toEqual(["-", "+"]);
    expect(lineDiff("x\ny", "x\ny").every((l) => l.op === " ")).toBe(true);
    expect(lineDiff("", "z")).toEqual([
      { op: "-", text: "" },
      { op: "+", text: "z" },
    ]);
  });
});
