"""Plot a training run's log.jsonl (running averages of its losses over training time) to a PNG, for the cards.

    python scripts/plot_training_log.py runs/codec/v6/log.jsonl --keys stft f0_cents emb_l2 --out curve.png
"""

from __future__ import annotations

import argparse
import json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log")
    ap.add_argument("--keys", nargs="+", required=True, help="loss keys of the log's training rows")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default=None)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in open(args.log) if line.strip()]
    rows = [r for r in rows if "valid" not in r and "step" in r]
    fig, axes = plt.subplots(1, len(args.keys), figsize=(4 * len(args.keys), 3))
    for ax, key in zip(axes if len(args.keys) > 1 else [axes], args.keys):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=0.8)
        ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    fig.suptitle(args.title or args.log, fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(json.dumps({"out": args.out, "rows": len(rows)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
