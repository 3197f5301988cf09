#!/usr/bin/env python3
"""Draws the codec's size-fidelity curve from `sparkv codec-bench --json` files as an SVG.

Two panels: bytes per token (all layers, K + V) against next-token KL (log scale) and against
perplexity change, both from the precise (F32) run, one line per text, fixed ladder (q*) and
calibrated levels (c*) drawn apart. No plotting library needed. NAME=new.json~old.json also
draws old.json's calibrated levels (an earlier profile), dotted, to compare the two profiles.
Usage: bench/codec_curve.py OUT.svg NAME=bench.json[~before.json] [...]
"""
import json
import math
import sys

W, H, PAD = 460, 320, 56
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def panel(x0, title, series, ykey, ylog, ylabel):
    xs = [p["bytes_per_token"] for s in series for p in s[1]]
    ys = [p[ykey] for s in series for p in s[1]]
    if ylog:
        ys = [math.log10(max(y, 1e-6)) for y in ys]
    xmin, xmax = min(xs) * 0.9, max(xs) * 1.05
    ymin, ymax = min(ys), max(ys)
    ymin, ymax = ymin - 0.05 * (ymax - ymin + 1e-9), ymax + 0.05 * (ymax - ymin + 1e-9)

    def px(x):
        return x0 + PAD + (x - xmin) / (xmax - xmin) * (W - 1.5 * PAD)

    def py(y):
        y = math.log10(max(y, 1e-6)) if ylog else y
        return H - PAD + (y - ymin) / (ymax - ymin) * -(H - 1.7 * PAD)

    out = [f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-size="13">{title}</text>',
           f'<line x1="{x0 + PAD}" y1="{H - PAD}" x2="{x0 + W - PAD / 2}" y2="{H - PAD}" stroke="black"/>',
           f'<line x1="{x0 + PAD}" y1="{H - PAD}" x2="{x0 + PAD}" y2="{PAD * 0.6}" stroke="black"/>',
           f'<text x="{x0 + W / 2}" y="{H - 14}" text-anchor="middle" font-size="11">bytes per token (K+V, all layers)</text>',
           f'<text x="{x0 + 14}" y="{H / 2}" font-size="11" transform="rotate(-90 {x0 + 14} {H / 2})" text-anchor="middle">{ylabel}</text>']
    for i in range(5):
        x = xmin + (xmax - xmin) * i / 4
        out.append(f'<text x="{px(x)}" y="{H - PAD + 14}" font-size="9" text-anchor="middle">{x:.0f}</text>')
        y = ymin + (ymax - ymin) * i / 4
        label = f"{10 ** y:.0e}" if ylog else f"{100 * y:+.1f}%"
        yy = py(10 ** y if ylog else y)
        out.append(f'<text x="{x0 + PAD - 4}" y="{yy + 3}" font-size="9" text-anchor="end">{label}</text>')
    for si, (name, pts) in enumerate(series):
        c = COLORS[si % len(COLORS)]
        for fam, dash in (("q", "4,3"), ("c", ""), ("o", "1,2")):
            fp = sorted([p for p in pts if p.get("fam", p["name"][0]) == fam],
                        key=lambda p: p["bytes_per_token"])
            if len(fp) > 1:
                d = " ".join(f"{px(p['bytes_per_token']):.1f},{py(p[ykey]):.1f}" for p in fp)
                out.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-dasharray="{dash}"/>')
            for p in fp:
                out.append(f'<circle cx="{px(p["bytes_per_token"]):.1f}" cy="{py(p[ykey]):.1f}" r="3" fill="{c}"/>')
                label = p["name"] + ("'" if fam == "o" else "")
                out.append(f'<text x="{px(p["bytes_per_token"]) + 4:.1f}" y="{py(p[ykey]) - 4:.1f}" font-size="8">{label}</text>')
        out.append(f'<text x="{x0 + W - 150}" y="{40 + 14 * si}" font-size="10" fill="{c}">{name}</text>')
    return out


def points(path, fam):
    j = json.load(open(path))
    return [{"name": l["name"], "bytes_per_token": l["bytes_per_token"],
             "kl": l["precise"]["kl_mean"], "ppl": l["precise"]["ppl_change_rel"],
             **({"fam": fam} if fam else {})}
            for l in j["levels"] if not l["lossless"] and l["name"][0] in "qc"]


def main():
    out_path = sys.argv[1]
    series = []
    for arg in sys.argv[2:]:
        name, paths = arg.split("=", 1)
        path, _, before = paths.partition("~")
        pts = points(path, "")
        if before:
            pts += [p for p in points(before, "o") if p["name"][0] == "c"]
        series.append((name, pts))
    parts = panel(0, "next-token KL (F32 model)", series, "kl", True, "KL (nats)")
    parts += panel(W, "perplexity change (F32 model)", series, "ppl", False, "ppl change")
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H}" font-family="sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>', *parts,
           f'<text x="{W}" y="{H - 2}" font-size="9" text-anchor="middle">dashed: fixed ladder q6h/q5h/q4h; solid: calibrated c4/c5/c6/c8; dotted, primed names: the earlier profile</text>',
           "</svg>"]
    open(out_path, "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
