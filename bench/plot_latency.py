#!/usr/bin/env python3
"""Latency-percentile plot of benchmark runs, as a hand-written SVG (standard library only).

Usage: bench/plot_latency.py RUNS.jsonl OUT.svg [TITLE]

RUNS.jsonl holds one JSON object per line, each with a "label" (the legend text) and the
"latency_ms" object `spate bench produce --json` prints ({"p50", "p95", "p99", "p999", "max",
...}). Each run becomes one polyline over p50, p95, p99, p99.9 and max, on a log-scale y axis
(milliseconds). Runs take the 8 colours in turn, then again dashed, then dotted: each of up to 24
runs has a style of its own (bench/matrix.sh's first 8 runs, 1024-byte records, come out solid,
the 100-byte ones dashed).
"""
import json
import math
import sys
from xml.sax.saxutils import escape

PERCENTILES = [("p50", "p50"), ("p95", "p95"), ("p99", "p99"), ("p999", "p99.9"), ("max", "max")]
# 8 colours that stay distinct on white, times 3 dash patterns: 24 lines told apart.
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
DASHES = ["", ' stroke-dasharray="7 4"', ' stroke-dasharray="2 3"']
FLOOR_MS = 0.001  # a log axis has no zero: smaller values are drawn at this floor

PLOT_WIDTH, HEIGHT = 620, 560
LEFT, TOP, BOTTOM = 80, 50, 60  # margins; the legend sits in the right one, sized to the labels


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            run = json.loads(line)
            latency = run.get("latency_ms") or {}
            values = [latency.get(key) for key, _ in PERCENTILES]
            if any(v is None for v in values):
                continue  # a failed run has no latency figures: nothing to draw
            runs.append((run["label"], [max(float(v), FLOOR_MS) for v in values]))
    return runs


def fmt_ms(v):
    return f"{v:g}" if v >= 1 else f"{v:.3g}"


def plot(runs, title):
    plot_w, plot_h = PLOT_WIDTH, HEIGHT - TOP - BOTTOM
    width = LEFT + plot_w + 60 + 7 * max((len(label) for label, _ in runs), default=10)
    values = [v for _, vs in runs for v in vs] or [1.0]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10
    span = math.log10(hi) - math.log10(lo)

    def x(i):
        return LEFT + plot_w * (i + 0.5) / len(PERCENTILES)

    def y(v):
        return TOP + plot_h * (1 - (math.log10(v) - math.log10(lo)) / span)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
        f'viewBox="0 0 {width} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT + plot_w / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    # Horizontal grid: 1, 2 and 5 of every decade, labelled.
    decade = lo
    while decade <= hi * 1.0001:
        for m in (1, 2, 5):
            v = decade * m
            if v > hi * 1.0001:
                break
            major = m == 1
            out.append(
                f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{LEFT + plot_w}" y2="{y(v):.1f}" '
                f'stroke="{"#bbb" if major else "#e4e4e4"}" stroke-width="1"/>'
            )
            out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="{"#000" if major else "#777"}">{fmt_ms(v)}</text>')
        decade *= 10
    # Vertical grid and x labels: one per percentile.
    for i, (_, name) in enumerate(PERCENTILES):
        out.append(f'<line x1="{x(i):.1f}" y1="{TOP}" x2="{x(i):.1f}" y2="{TOP + plot_h}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{x(i):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{name}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#000"/>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 16}" text-anchor="middle">percentile of send-to-acknowledgement latency</text>')
    out.append(
        f'<text x="22" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 22 {TOP + plot_h / 2})">latency (ms, log scale)</text>'
    )
    # One polyline (with point markers) per run, and its legend entry.
    for n, (label, vs) in enumerate(runs):
        colour = COLOURS[n % len(COLOURS)]
        dash = DASHES[(n // len(COLOURS)) % len(DASHES)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"{dash}><title>{escape(label)}</title></polyline>')
        for i, v in enumerate(vs):
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>')
        ly = TOP + 8 + n * 18
        lx = LEFT + plot_w + 16
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 26}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 32}" y="{ly + 4}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    runs = load(sys.argv[1])
    if not runs:
        sys.exit(f"{sys.argv[1]}: no run with latency figures")
    title = sys.argv[3] if len(sys.argv) == 4 else "spate bench produce: latency percentiles"
    with open(sys.argv[2], "w") as f:
        f.write(plot(runs, title))


if __name__ == "__main__":
    main()
