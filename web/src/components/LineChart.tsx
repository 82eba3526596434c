// Line charts drawn as SVG, for training curves (loss, accuracy per epoch).
export type Series = { name: string; points: number[]; className: string };

export function LineChart({ series, title, max: fixedMax }: { series: Series[]; title: string; max?: number }) {
  const n = Math.max(2, ...series.map((s) => s.points.length));
  const max = fixedMax ?? Math.max(1e-9, ...series.flatMap((s) => s.points));
  const W = 100;
  const H = 40;
  const x = (i: number) => (i / (n - 1)) * W;
  const y = (v: number) => H - (v / max) * (H - 2) - 1;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={title} style={{ height: 160 }}>
        {series.map((s) => (
          <polyline key={s.name} className={`line ${s.className}`} fill="none" vectorEffect="non-scaling-stroke" points={s.points.map((v, i) => `${x(i)},${y(v)}`).join(" ")} />
        ))}
      </svg>
      <figcaption className="row muted">
        {series.map((s) => (
          <span key={s.name} className={`legend ${s.className}`}>
            {s.name}: {s.points.length ? s.points[s.points.length - 1].toFixed(4) : "–"}
          </span>
        ))}
        <span>
          over {Math.max(0, ...series.map((s) => s.points.length))} epochs · top of the chart {max.toFixed(3)}
        </span>
      </figcaption>
    </figure>
  );
}
