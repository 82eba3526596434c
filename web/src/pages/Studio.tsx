import { useEffect, useState } from "react";
import { api, invokeStream, must, ProblemError, type Schemas } from "../api/client";
import { defaults, SchemaForm, type JSONSchema } from "../components/SchemaForm";
import { Empty, ProblemView, Spinner, useLoad } from "../components/ui";
import { Link } from "../router";

type Image = { src: string; prompt: string; seed: number; width: number; height: number; steps: number; ms: number };

// The gallery lives for the browser session: images are megabytes of
// base64 each, too big to keep in localStorage.
const gallery: Image[] = [];

/**
 * Studio runs the stable_diffusion_xl module with a form made from its
 * input schema and shows the PNG it returns, with a gallery of this
 * session's images.
 */
export function Studio({ version }: { version: string }) {
  const v = useLoad(() => must(api.GET("/v1/modules/{id}/versions/{version}", { params: { path: { id: "stable_diffusion_xl", version } } })), [version]);
  const schema = v.data?.manifest.inputs as JSONSchema | undefined;
  const [input, setInput] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [started, setStarted] = useState(0);
  const [error, setError] = useState<unknown>(null);
  // The latest step the module reported, with its preview of the image.
  const [step, setStep] = useState<Schemas["Progress"] | null>(null);
  const [images, setImages] = useState<Image[]>(gallery);
  if (v.error) return <ProblemView error={v.error} />;
  if (!v.data) return <Spinner />;
  const value = input ?? defaults(schema);
  const fields: Record<string, string> = {};
  if (error instanceof ProblemError) for (const [k, m] of Object.entries(error.fieldErrors())) fields[k.replace(/^body\.input\.?/, "")] = m;
  const generate = async () => {
    setBusy(true);
    setError(null);
    setStarted(Date.now());
    setStep(null);
    try {
      const r = await invokeStream("stable_diffusion_xl", version, value, setStep);
      const out = r.output as { image: string; mime_type: string; seed: number; width: number; height: number; steps_run: number };
      const img: Image = {
        src: `data:${out.mime_type};base64,${out.image}`,
        prompt: String((value as { prompt?: string }).prompt ?? ""),
        seed: out.seed,
        width: out.width,
        height: out.height,
        steps: out.steps_run,
        ms: r.duration_ms,
      };
      gallery.unshift(img);
      gallery.splice(12);
      setImages([...gallery]);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const grantMissing = (v.data.grant?.capabilities?.accel?.models ?? []).length === 0;
  return (
    <>
      <h1>Image studio</h1>
      <p className="muted">
        Stable Diffusion XL on this machine's accelerator ({v.data.manifest.name} {version}). Same seed and settings, same image.
      </p>
      {grantMissing && (
        <div className="problem" role="alert">
          The module is not granted any model yet: grant it under <Link to="/modules/stable_diffusion_xl">Modules → Stable Diffusion XL → Capabilities</Link>, and register the model folder under AI models.
        </div>
      )}
      <div className="grid" style={{ gridTemplateColumns: "minmax(280px, 420px) 1fr", alignItems: "start" }}>
        <div className="panel">
          <SchemaForm schema={schema} value={value} onChange={setInput} errors={fields} idPrefix="sdxl" />
          <button className="primary" type="button" onClick={generate} disabled={busy}>
            {busy ? "Generating…" : "Generate"}
          </button>
          {busy && (
            <div role="status" aria-live="polite" style={{ marginTop: "0.5rem" }}>
              {step && step.total > 0 ? (
                <>
                  <progress aria-label="Denoising steps" max={step.total} value={step.done} /> step {step.done} of {step.total}{" "}
                </>
              ) : (
                <progress aria-label="Generating" />
              )}{" "}
              <Elapsed since={started} />
              {step?.preview && (
                <div>
                  <img className="artifact" src={step.preview} alt={`Preview after step ${step.done}`} width={128} height={128} style={{ imageRendering: "pixelated", marginTop: "0.5rem" }} />
                </div>
              )}
            </div>
          )}
          <ProblemView error={error} hint="A model that is not registered or not granted is named in the error: fix it under AI models or the module's capabilities." />
        </div>
        <div className="panel">
          <h2 style={{ marginTop: 0 }}>Gallery</h2>
          {images.length === 0 ? (
            <Empty title="No images yet">Write a prompt and press Generate.</Empty>
          ) : (
            <div className="grid">
              {images.map((img, i) => (
                <figure key={i} style={{ margin: 0 }}>
                  <img className="artifact" src={img.src} alt={img.prompt} width={img.width} height={img.height} style={{ height: "auto" }} />
                  <figcaption>
                    {img.prompt}
                    <div className="muted">
                      seed {img.seed} · {img.width}×{img.height} · {img.steps} steps · {(img.ms / 1000).toFixed(1)} s ·{" "}
                      <a href={img.src} download={`sdxl-${img.seed}.png`}>
                        download
                      </a>
                    </div>
                  </figcaption>
                </figure>
              ))}
            </div>
          )}
        </div>
      </div>
    </>
  );
}

function Elapsed({ since }: { since: number }) {
  const [, tick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => tick((n) => n + 1), 500);
    return () => clearInterval(t);
  }, []);
  return <span className="muted">{((Date.now() - since) / 1000).toFixed(0)} s</span>;
}
