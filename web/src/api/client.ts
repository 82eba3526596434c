// The console's only way to the server: a client generated from the
// committed openapi.json (schema.d.ts, made by openapi-typescript in the
// build), so a change to the API that the console does not follow fails
// the type check.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
/** Problem is an RFC 9457 problem; type is optional for ones made here. */
export type Problem = Omit<Schemas["ErrorModel"], "type"> & { type?: string };

let csrfToken = "";

/** setCsrfToken remembers the session's CSRF token, sent with every unsafe request. */
export function setCsrfToken(token: string) {
  csrfToken = token;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (!["GET", "HEAD", "OPTIONS"].includes(request.method) && csrfToken) {
      request.headers.set("X-CSRF-Token", csrfToken);
    }
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(csrf);

/** ProblemError carries an RFC 9457 problem from the server. */
export class ProblemError extends Error {
  problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail || problem.title || "request failed");
    this.problem = problem;
  }
  /** fieldErrors maps each location the server named (body.manifest.id…) to its message. */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.problem.errors ?? []) {
      if (e.location) out[e.location] = e.message ?? "is not valid";
    }
    return out;
  }
}

export function toProblem(err: unknown, status = 0): Problem {
  if (err && typeof err === "object" && ("title" in err || "detail" in err)) return err as Problem;
  return { title: "Request failed", status, detail: String(err ?? "unknown error") };
}

/**
 * must returns the data of an openapi-fetch result or throws its problem,
 * so pages can use try/catch and show the problem where it applies.
 */
export async function must<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let r;
  try {
    r = await p;
  } catch (e) {
    throw new ProblemError({ title: "The server cannot be reached", detail: `${e}. Check that millrace is running, then try again.` });
  }
  if (r.error !== undefined || !r.response.ok) {
    if (r.response.status === 401) window.dispatchEvent(new Event("millrace:signed-out"));
    throw new ProblemError(toProblem(r.error, r.response.status));
  }
  return r.data as T;
}

/**
 * invokeStream runs a module version through invoke-module-stream: each
 * progress event (with its preview image, if any) goes to onProgress as it
 * comes, and the promise ends with the result, or throws the problem the
 * plain invoke-module would answer with. EventSource cannot POST, so the
 * stream is read from fetch.
 */
export async function invokeStream(
  id: string,
  version: string,
  input: unknown,
  onProgress: (p: Schemas["Progress"]) => void,
): Promise<Schemas["InvokeResult"]> {
  let res: Response;
  try {
    res = await fetch(`/v1/modules/${encodeURIComponent(id)}/versions/${encodeURIComponent(version)}/invoke/stream`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...(csrfToken ? { "X-CSRF-Token": csrfToken } : {}) },
      body: JSON.stringify({ input }),
    });
  } catch (e) {
    throw new ProblemError({ title: "The server cannot be reached", detail: `${e}. Check that millrace is running, then try again.` });
  }
  if (!res.ok || !res.body) {
    if (res.status === 401) window.dispatchEvent(new Event("millrace:signed-out"));
    throw new ProblemError(toProblem(await res.json().catch(() => null), res.status));
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    // Events are separated by a blank line: "event: NAME\ndata: JSON\n\n".
    for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (!data) continue;
      const payload = JSON.parse(data);
      if (name === "progress") onProgress(payload as Schemas["Progress"]);
      else if (name === "result") return payload as Schemas["InvokeResult"];
      else if (name === "problem") throw new ProblemError(toProblem(payload, (payload as { status?: number }).status ?? 0));
    }
  }
  throw new ProblemError({ title: "The invocation ended without a result", detail: "The connection closed early; try again." });
}

/**
 * uploadModule posts a module with XMLHttpRequest rather than fetch: only
 * it reports upload progress. The endpoint and its answer are the
 * generated client's (upload-module).
 */
export function uploadModule(wasm: File, manifest: File | null, onProgress: (fraction: number) => void): Promise<Schemas["Version"]> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("wasm", wasm);
    if (manifest) form.append("manifest", manifest);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/modules");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON: reported below */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as Schemas["Version"]);
      else reject(new ProblemError(toProblem(body ?? xhr.statusText, xhr.status)));
    };
    xhr.onerror = () => reject(new ProblemError({ title: "Upload failed", detail: "The server could not be reached during the upload. Check it is running and try again." }));
    xhr.send(form);
  });
}

