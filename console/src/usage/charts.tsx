/**
 * The usage screen's three charts. Each is a <figure> named by its aria-label, with the same numbers in a
 * table under "Data" for anyone who cannot see the chart; series differ by legend, tooltip and pattern
 * (dashes, stacking order), never by colour alone. They redraw on every poll, so nothing animates.
 */
import type { ReactNode } from "react";
import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import { formatDecimal } from "../decimal";
import type { Schema } from "../schemas";
import { ScrollTable } from "../ui";
import { type Bucket, bucketLabel, tickLabel } from "./range";

type Metrics = Schema<"MetricsResponse">;
export type SeriesPoint = NonNullable<Metrics["series"]>[number];

export const tokenKinds = [
  ["input", "Input"],
  ["output", "Output"],
  ["cacheRead", "Cache read"],
  ["cacheWrite", "Cache write"],
  ["thinking", "Thinking"],
] as const;
export type TokenKind = (typeof tokenKinds)[number][0];

// Okabe–Ito: told apart with the common colour-vision deficiencies, readable on light and dark.
const palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9"];
const axisTick = { fill: "currentColor", fontSize: 12 };
const CHART_HEIGHT = 240;

/** A chart row: one bucket. `cost` is a number only to place the bar; `costText` is the exact amount. */
type Row = {
  start: string;
  cost: number;
  costText: string;
  p50: number | null;
  p95: number | null;
} & Record<TokenKind, number>;

export function toRows(series: SeriesPoint[]): Row[] {
  return series.map((s) => {
    return {
      start: s.start,
      input: s.tokenUsage.input,
      output: s.tokenUsage.output,
      cacheRead: s.tokenUsage.cacheRead,
      cacheWrite: s.tokenUsage.cacheWrite,
      thinking: s.tokenUsage.thinking,
      cost: Number(s.cost),
      costText: s.cost,
      p50: s.latencyMs.p50,
      p95: s.latencyMs.p95,
    };
  });
}

const integer = new Intl.NumberFormat();
const compact = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${integer.format(ms)} ms` : `${compact.format(ms / 1000)} s`;
}

/** One column of a chart's data table: its heading and each bucket's value. */
type Column = { name: string; value: (row: Row) => ReactNode };

type ChartProps = { rows: Row[]; bucket: Bucket; label: string };

/** A chart and, under "Data", its numbers as a table: one row per bucket, one column per series. */
function ChartFigure({ label, rows, bucket, columns, chart }: ChartProps & { columns: Column[]; chart: ReactNode }) {
  return (
    <figure aria-label={label} className="chart">
      <div className="chart-box">
        <ResponsiveContainer width="100%" height={CHART_HEIGHT}>
          {chart}
        </ResponsiveContainer>
      </div>
      <details>
        <summary>Data</summary>
        <ScrollTable label={`${label}: data`}>
          <table>
            <thead>
              <tr>
                <th scope="col">Period</th>
                {columns.map((c) => (
                  <th key={c.name} scope="col" className="num">
                    {c.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.start}>
                  <th scope="row">{bucketLabel(r.start, bucket)}</th>
                  {columns.map((c) => (
                    <td key={c.name} className="num">
                      {c.value(r)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollTable>
      </details>
    </figure>
  );
}

/**
 * What every chart has under its series: the grid and the time axis. Called, not rendered as a component:
 * recharts reads its axes from the chart's direct children.
 */
function timeAxes(bucket: Bucket, padding?: { left: number; right: number }) {
  return [
    <CartesianGrid key="grid" strokeDasharray="3 3" vertical={false} />,
    <XAxis
      key="x"
      dataKey="start"
      tickFormatter={(v: string) => tickLabel(v, bucket)}
      tick={axisTick}
      minTickGap={16}
      padding={padding}
    />,
  ];
}

const margin = { top: 8, right: 8, bottom: 0, left: 0 };

export function TokensChart({ rows, bucket, kinds, label }: ChartProps & { kinds: readonly TokenKind[] }) {
  const shown = tokenKinds.filter(([k]) => kinds.includes(k));
  return (
    <ChartFigure
      label={label}
      rows={rows}
      bucket={bucket}
      columns={shown.map(([key, name]) => ({ name, value: (r) => integer.format(r[key]) }))}
      chart={
        <BarChart data={rows} margin={margin}>
          {timeAxes(bucket)}
          <YAxis allowDecimals={false} tick={axisTick} width={48} />
          <Tooltip labelFormatter={(v) => bucketLabel(String(v), bucket)} />
          <Legend />
          {shown.map(([key, name]) => (
            <Bar
              key={key}
              dataKey={key}
              name={name}
              stackId="tokens"
              isAnimationActive={false}
              fill={palette[tokenKinds.findIndex(([k]) => k === key)]}
            />
          ))}
        </BarChart>
      }
    />
  );
}

export function CostChart({ rows, bucket, label, currency }: ChartProps & { currency: string | undefined }) {
  const unit = currency ? ` (${currency})` : "";
  return (
    <ChartFigure
      label={label}
      rows={rows}
      bucket={bucket}
      columns={[{ name: `Cost${unit}`, value: (r) => formatDecimal(r.costText) }]}
      chart={
        <BarChart data={rows} margin={margin}>
          {timeAxes(bucket)}
          {/* A wallet without spend still gets a readable axis instead of a collapsed one. */}
          <YAxis
            tick={axisTick}
            width={56}
            domain={[0, (max: number) => (max > 0 ? max : 1)]}
            tickFormatter={(v: number) => compact.format(v)}
          />
          <Tooltip
            labelFormatter={(v) => bucketLabel(String(v), bucket)}
            formatter={(_value, _name, item) => formatDecimal(String((item.payload as Row).costText))}
          />
          <Bar dataKey="cost" name={`Cost${unit}`} fill={palette[0]} isAnimationActive={false} />
        </BarChart>
      }
    />
  );
}

export function LatencyChart({ rows, bucket, label }: ChartProps) {
  return (
    <ChartFigure
      label={label}
      rows={rows}
      bucket={bucket}
      columns={[
        { name: "p50", value: (r) => formatMs(r.p50) },
        { name: "p95", value: (r) => formatMs(r.p95) },
      ]}
      chart={
        <LineChart data={rows} margin={margin}>
          {timeAxes(bucket, { left: 12, right: 12 })}
          <YAxis tick={axisTick} width={56} tickFormatter={(v: number) => formatMs(v)} />
          <Tooltip labelFormatter={(v) => bucketLabel(String(v), bucket)} formatter={(v) => formatMs(Number(v))} />
          <Legend />
          {/* Buckets with no finished turn have no latency: a gap. Marks (circle, square) make lone points visible
              and tell the two apart without colour. */}
          <Line
            dataKey="p50"
            name="p50"
            stroke={palette[0]}
            strokeWidth={2}
            dot={{ symbol: "circle", r: 4, fill: palette[0] }}
            isAnimationActive={false}
          />
          <Line
            dataKey="p95"
            name="p95"
            stroke={palette[1]}
            strokeWidth={2}
            strokeDasharray="6 3"
            dot={{ symbol: "square", r: 4, fill: palette[1], strokeDasharray: "0" }}
            isAnimationActive={false}
          />
        </LineChart>
      }
    />
  );
}
