import { api } from "./client";

/**
 * Features are the optional parts of the server the console adapts to:
 * the AI pages appear only where the server has them, so one console
 * works with servers built with and without them.
 */
export type Features = {
  /** The stable_diffusion_xl module is installed (the image studio). */
  sdxl: string | null;
  /** The datasets API exists. */
  datasets: boolean;
  /** The training-jobs API exists. */
  training: boolean;
};

export const noFeatures: Features = { sdxl: null, datasets: false, training: false };

export async function probeFeatures(canReadModules: boolean): Promise<Features> {
  const [doc, mods] = await Promise.all([
    fetch("/openapi.json")
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .catch(() => ({ paths: {} })),
    canReadModules ? api.GET("/v1/modules").then((r) => r.data?.modules ?? []) : Promise.resolve([]),
  ]);
  const paths = Object.keys(doc.paths ?? {});
  const sdxl = mods.find((m) => m.id === "stable_diffusion_xl");
  return {
    sdxl: sdxl ? sdxl.latest : null,
    datasets: paths.includes("/v1/datasets"),
    training: paths.includes("/v1/training-jobs"),
  };
}
