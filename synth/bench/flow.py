"""``synth bench flow``: how long the flow generator takes for the notes of a NEW point (25 pitches, one batch).

For each torch thread count, sampler and step count: the median (and best) wall seconds and the median CPU seconds
of this process (with one thread: the cost on an idle core, whatever else runs) to generate ``--notes`` notes
at one point with guidance (the doubled conditional + unconditional batch included), and one note alone (the most
urgent note, as the engine's worker generates it first). Codec decoding is not included (``bench generate`` times
it: ~0.3 s for 25 notes with the bundled codec). Runs on a trained flow (``--run``: flow.json + flow.pt) or, by
default, on a random-weight model of the default ``FlowConfig`` (with ``--set`` overrides): the time does not depend
on the weights. The last line is one JSON object (``--json``).
"""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=None, help="a trained flow run folder (default: random weights)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a FlowConfig field")
    parser.add_argument("--steps", default="4,6,8,12,16", help="comma-separated step counts")
    parser.add_argument("--samplers", default="euler,heun", help="comma-separated: euler, heun")
    parser.add_argument("--guidance", type=float, default=2.0, help="any value but 0 and 1 doubles the batch")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--notes", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    import torch

    from synth.model.flow import FlowConfig, FlowNet, benchmark, load_flow
    from synth.model.overrides import apply_overrides_validated

    if args.run:
        model = load_flow(args.run, map_location=args.device)
    else:
        cfg = FlowConfig()
        if not apply_overrides_validated(cfg, args.set):
            return 2
        torch.manual_seed(0)
        model = FlowNet(cfg)
    steps = [int(s) for s in args.steps.split(",") if s]
    samplers = [s for s in args.samplers.split(",") if s]
    results = []
    for th in [int(t) for t in args.threads.split(",") if t]:
        r = benchmark(model=model, steps=steps, samplers=samplers, guidance=args.guidance, notes=args.notes,
                      threads=th, repeats=args.repeats, device=args.device)
        results.append(r)
        if not args.json:
            for row in r["rows"]:
                n = args.notes
                print(f"threads {r['threads']}  {row['sampler']:5} steps {row['steps']:2}  calls {row['net_calls']:2}  "
                      f"{n} notes {row[f'all_{n}_s']:.3f} s (best {row[f'all_{n}_best_s']:.3f}, "
                      f"cpu {row[f'all_{n}_cpu_s']:.3f})  first note {row['first_note_s']:.3f} s")
    res = {"model": args.run or "random weights, default FlowConfig" + (f" + {args.set}" if args.set else ""),
           "device": args.device, "guidance": args.guidance, "notes": args.notes,
           "parameters": results[0]["parameters"] if results else None,
           "config": results[0]["config"] if results else None,
           "default_steps": model.cfg.sample_steps, "default_sampler": model.cfg.sampler,
           "target_s": {"all_25_model": 1.0, "all_25_with_decode": 1.5, "first_note_with_decode": 0.3},
           "by_threads": [{"threads": r["threads"], "rows": r["rows"]} for r in results]}
    print(json.dumps(res))
    return 0
