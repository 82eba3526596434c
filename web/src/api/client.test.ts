import { afterEach, describe, expect, it, vi } from "vitest";
import { invokeStream, ProblemError } from "./client";

// A body that arrives in awkward pieces: events split across chunks, as a
// real network delivers them.
function streamed(chunks: string[], status = 200): Response {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const chunk of chunks) c.enqueue(new TextEncoder().encode(chunk));
      c.close();
    },
  });
  return new Response(body, { status, headers: { "Content-Type": "text/event-stream" } });
}

afterEach(() => vi.unstubAllGlobals());

describe("invokeStream", () => {
  it("reports each progress event, then resolves with the result", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        streamed([
          'event: progress\ndata: {"done":1,"total":2,"preview":"data:image/png;base64,AA"}\n\nevent: prog',
          'ress\ndata: {"done":2,"total":2}\n\n',
          'event: result\ndata: {"module":"m","version":"1.0.0","output":{"ok":true},"logs":[],"duration_ms":3}\n\n',
        ]),
      ),
    );
    const seen: number[] = [];
    const previews: (string | undefined)[] = [];
    const r = await invokeStream("m", "1.0.0", { prompt: "x" }, (p) => {
      seen.push(p.done);
      previews.push(p.preview);
    });
    expect(seen).toEqual([1, 2]);
    expect(previews[0]).toBe("data:image/png;base64,AA");
    expect(r.output).toEqual({ ok: true });
  });

  it("throws the problem event as a ProblemError", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => streamed(['event: problem\ndata: {"status":422,"title":"Module failed","detail":"model \\"sdxl-turbo\\" is not registered"}\n\n'])));
    const err = await invokeStream("m", "1.0.0", {}, () => {}).catch((e) => e);
    expect(err).toBeInstanceOf(ProblemError);
    expect(err.problem.status).toBe(422);
    expect(err.message).toContain("not registered");
  });

  it("says so when the stream ends without a result", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => streamed(['event: progress\ndata: {"done":1,"total":4}\n\n'])));
    await expect(invokeStream("m", "1.0.0", {}, () => {})).rejects.toThrow("closed early");
  });
});
