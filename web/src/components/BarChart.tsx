// A stacked bar chart drawn as SVG: the dashboard needs one chart, which
// does not justify a charting library.
export type Bar = { label: string; values: { name: string; value: number; className: string }[] };

export function BarChart({ bars, title, height = 160 }: { bars: Bar[]; title: string; height?: number }) {
  const max = Math.max(1, ...bars.map((b) => b.values.reduce((s, v) => s + v.value, 0)));
  const w = 100 / Math.max(1, bars.length);
  return (
    <figure className="chart">
      <svg viewBox={`0 0 100 ${height / 2}`} preserveAspectRatio="none" role="img" aria-label={title} style={{ height }}>
        {bars.map((b, i) => {
          let y = height / 2;
          return (
            <g key={b.label}>
              <title>{`${b.label}: ${b.values.map((v) => `${v.value} ${v.name}`).join(", ")}`}</title>
              {b.values.map((v) => {
                const h = (v.value / max) * (height / 2 - 2);
                y -= h;
                return <rect key={v.name} x={i * w + w * 0.15} y={y} width={w * 0.7} height={h} className={v.className} />;
              })}
            </g>
          );
        })}
      </svg>
      <figcaption className="chart-axis">
        {bars.map((b, i) => (
          <span key={b.label} style={{ width: `${w}%` }}>
            {i % Math.ceil(bars.length / 7) === 0 ? b.label : ""}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
