#!/usr/bin/env python3
"""Tables and plot of scripts/finetune-story.sh from the JSON its runs wrote.

usage: finetune_story.py OUT BEST_CRITERION PLOT.svg BUDGET_EPOCHS
"""

import json
import sys
from pathlib import Path


def load(path):
    with open(path) as f:
        return json.load(f)


def rows(path, series="slimmable"):
    return {r["width"]: r for r in load(path)["results"] if r["series"] == series}


def main():
    out, best, plot, budget = (
        Path(sys.argv[1]),
        sys.argv[2],
        Path(sys.argv[3]),
        sys.argv[4],
    )
    torch = load(out / "pretrained" / "pytorch.json")
    zero = {o: rows(out / f"zero-shot-{o}.json") for o in ("none", "l1", "bn")}
    stored = rows(out / "zero-shot-none.json", "stored BN statistics")[1.0]
    by_structure = rows(out / "state-dict.json", "stored BN statistics")[1.0]
    tuned = {e: rows(out / f"us-finetune-{e}.json") for e in (1, 2)}
    # Runs not made yet leave their columns empty.
    optional = lambda name: rows(out / name) if (out / name).exists() else {}
    teacher = optional("us-finetune-1-teacher.json")
    equal = optional("us-scratch-budget.json")
    # The from-scratch runs are optional (FROM_SCRATCH_EPOCHS 0): their columns stay empty.
    scratch_path = out / "scratch.json"
    scratch_doc = load(scratch_path)["results"] if scratch_path.exists() else []
    scratch = {r["width"]: r for r in scratch_doc if r["series"] == "slimmable"}
    fixed = {r["width"]: r for r in scratch_doc if r["series"].startswith("fixed: ")}
    pct = lambda r: f"{100 * r['top1']:.2f}%" if r else ""

    print(
        f"(a) PyTorch, {torch['epochs']} epochs at full width: test top-1 {100 * torch['test_top1']:.2f}% "
        f"({torch['test_correct']} of 10,000); imported into slimc, its BN statistics: "
        f"{pct(stored)} ({round(stored['top1'] * 10000)} of 10,000); its state_dict in models/resnet20.slim, "
        f"matched by structure: {pct(by_structure)} ({round(by_structure['top1'] * 10000)} of 10,000)\n"
    )
    print(
        "| width | MACs | zero-shot, no order | zero-shot, l1 | zero-shot, bn "
        f"| US fine-tuned 1 epoch ({best}) | 1 epoch, --teacher | 2 epochs "
        f"| US from scratch, {budget} epochs (same budget) | US from scratch | fixed width, from scratch | 2 epochs - fixed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for w in sorted(zero["none"]):
        f = fixed.get(w)
        gap = f"{100 * (tuned[2][w]['top1'] - f['top1']):+.2f}" if f else ""
        print(
            f"| {w} | {zero['none'][w]['macs'] / 1e6:.2f}M | {pct(zero['none'][w])} | {pct(zero['l1'][w])} "
            f"| {pct(zero['bn'][w])} | {pct(tuned[1].get(w))} | {pct(teacher.get(w))} | {pct(tuned[2].get(w))} "
            f"| {pct(equal.get(w))} | {pct(scratch.get(w))} "
            f"| {pct(f)} | {gap} |"
        )

    series = [
        (f"zero-shot ({best} order)", zero[best], "#999999", True),
        ("zero-shot (no order)", zero["none"], "#cccccc", True),
        ("US fine-tuned 1 epoch", tuned[1], "#6baed6", True),
        ("1 epoch, --teacher", teacher, "#9e9ac8", True),
        ("US fine-tuned 2 epochs", tuned[2], "#08519c", True),
        (f"US from scratch, {budget} epochs", equal, "#e6550d", True),
        ("US from scratch", scratch, "#fdae6b", True),
        ("fixed width, from scratch", fixed, "#31a354", False),
    ]
    svg(plot, [s for s in series if s[1]])
    print(f"\nplot: {plot}")


def svg(path, series):
    """Test top-1 against MACs, one polyline (or points) per series, as a small SVG."""
    pts = [(r["macs"], r["top1"]) for _, s, _, _ in series for r in s.values()]
    x0, x1 = 0, max(m for m, _ in pts) * 1.05
    y0 = min(t for _, t in pts) - 0.01
    y1 = max(t for _, t in pts) + 0.01
    W, H, L, B = 640, 400, 60, 40
    X = lambda m: L + (W - L - 200) * (m - x0) / (x1 - x0)
    Y = lambda t: H - B - (H - B - 20) * (t - y0) / (y1 - y0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<line x1="{L}" y1="{H - B}" x2="{W - 200}" y2="{H - B}" stroke="black"/>',
        f'<line x1="{L}" y1="20" x2="{L}" y2="{H - B}" stroke="black"/>',
        f'<text x="{(W - 200 + L) / 2}" y="{H - 8}" text-anchor="middle">MACs (millions)</text>',
        f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">test top-1 (%)</text>',
    ]
    for k in range(6):
        m = x1 * k / 5
        t = y0 + (y1 - y0) * k / 5
        out.append(
            f'<text x="{X(m):.1f}" y="{H - B + 14}" text-anchor="middle">{m / 1e6:.0f}</text>'
        )
        out.append(
            f'<text x="{L - 4}" y="{Y(t) + 4:.1f}" text-anchor="end">{100 * t:.1f}</text>'
        )
    for i, (name, s, color, line) in enumerate(series):
        p = sorted((r["macs"], r["top1"]) for r in s.values())
        if line:
            coords = " ".join(f"{X(m):.1f},{Y(t):.1f}" for m, t in p)
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        for m, t in p:
            out.append(
                f'<circle cx="{X(m):.1f}" cy="{Y(t):.1f}" r="3" fill="{color}"/>'
            )
        out.append(
            f'<rect x="{W - 190}" y="{24 + 18 * i}" width="12" height="12" fill="{color}"/>'
        )
        out.append(f'<text x="{W - 172}" y="{34 + 18 * i}">{name}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
