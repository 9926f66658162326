"""One command line for the project: ``python -m synth <command> [subcommand] ...`` (also the ``synth`` script).

Each command lives in its own module, imported only when that command runs, so ``synth --help`` stays fast and the
command modules never import each other. A command module defines ``configure(parser)`` and ``run(args) -> int``.
To add a command, add one row to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Sequence

from synth import recipe

# (command words) -> (module path, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("version",): ("synth.commands.version", "print the package, torch and device versions"),
    ("dataset", "build"): ("synth.data.build_cli", "render the SoundFont note dataset in NSynth layout"),
    ("dataset", "stats"): ("synth.data.stats_cli", "counts per family and split of a dataset"),
    ("codec", "encode"): ("synth.codec.encode_cli", "encode a dataset into the embedding cache"),
    ("codec", "train"): ("synth.codec.train_cli", "train the bundled codec (resumable)"),
    ("codec", "eval"): ("synth.eval.codec_cli", "evaluate a codec on held-out instruments"),
    ("train", "vae"): ("synth.model.train_vae_cli", "train the timbre VAE (stage 1, resumable)"),
    ("train", "generator"): ("synth.model.train_generator_cli", "train the generator (stage 2, resumable)"),
    ("train", "flow"): ("synth.model.train_flow_cli", "train the flow-matching generator (stage 2, sampling, resumable)"),
    ("eval", "latent"): ("synth.eval.latent_cli", "latent-map metrics of the VAE"),
    ("eval", "generate"): ("synth.eval.generate_cli", "pitch accuracy and spectral distances of generated notes"),
    ("eval", "velocity"): ("synth.eval.velocity_cli", "brightness and level over velocity, generated vs real, paired per note"),
    ("bench", "generate"): ("synth.bench.generate", "time to generate the first note, the 25 nearest keys and every key at a new point, per play path"),
    ("bench", "flow"): ("synth.bench.flow", "flow generator speed: steps x seconds for 25 notes at a new point"),
    ("bench", "engine"): ("synth.bench.engine", "MIDI-to-audio latency and underruns through JACK"),
    ("bench", "render"): ("synth.bench.render", "real-time factor of MIDI file rendering"),
    ("bench", "app"): ("synth.bench.app", "the real window on JACK: underruns, callback load and GIL wait while playing"),
    ("bench", "morph"): ("synth.bench.morph", "live morphing through JACK: timbre updates while the pad is dragged"),
    ("bundle", "build"): ("synth.model.bundle_cli", "assemble a model bundle folder with hashes"),
    ("bundle", "codec"): ("synth.model.bundle_codec_cli", "give a bundle a fine-tuned decoder (same encoder)"),
    ("bundle", "tune"): ("synth.model.bundle_tune_cli", "change a bundle's flow sampling settings (no retraining)"),
    ("play",): ("synth.engine.play_cli", "play the bundled model headless from a MIDI port"),
    ("prerender",): ("synth.engine.prerender_cli", "prerender the on-disk note grid over the map"),
    ("render",): ("synth.render_cli", "render a MIDI file to WAV"),
    ("export",): ("synth.export_cli", "export notes of a timbre as WAV files or an SFZ instrument"),
}

# The training pipeline's steps: they take --recipe FILE[:SECTION] (synth/recipe.py, recipes/default.json).
RECIPE_COMMANDS = {("dataset", "build"), ("codec", "train"), ("codec", "encode"), ("train", "vae"),
                   ("train", "generator"), ("train", "flow"), ("bundle", "build"), ("bundle", "codec")}


def _available() -> dict[tuple[str, ...], tuple[str, str]]:
    """Commands whose module exists in this checkout (issues land one at a time)."""
    found = {}
    for words, (module, help_text) in COMMANDS.items():
        if importlib.util.find_spec(module.rsplit(".", 1)[0]) is None:
            continue
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except ModuleNotFoundError:
            continue
        found[words] = (module, help_text)
    return found


def _has_module(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _usage(commands: dict[tuple[str, ...], tuple[str, str]]) -> str:
    width = max(len(" ".join(w)) for w in commands)
    lines = ["usage: synth <command> [options]   (python -m synth ...)", "", "commands:"]
    for words, (_, help_text) in sorted(commands.items()):
        lines.append(f"  {' '.join(words):<{width}}  {help_text}")
    lines.append("")
    lines.append("Run 'synth <command> --help' for the options of one command.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A named command is looked up in its own module only: checking every command's module imports their packages,
    # and synth.codec's imports torch (1.3-2.8 s here), most of a warm `synth render` (issue 19).
    direct = next((tuple(argv[:n]) for n in (2, 1) if tuple(argv[:n]) in COMMANDS), None)
    commands = {direct: COMMANDS[direct]} if direct is not None and _has_module(COMMANDS[direct][0]) else _available()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(commands))
        return 0
    if argv[0] in ("-V", "--version"):
        argv = ["version"]
    for n_words in (2, 1):
        words = tuple(argv[:n_words])
        if words in commands:
            module_path, help_text = commands[words]
            module = importlib.import_module(module_path)
            parser = argparse.ArgumentParser(prog="synth " + " ".join(words), description=help_text)
            module.configure(parser)
            rest = argv[n_words:]
            if words in RECIPE_COMMANDS:
                parser.add_argument(recipe.OPTION, metavar="FILE[:SECTION]",
                                    help="take options from a recipe file's section (default section: "
                                         f"{'_'.join(words)}); options typed here win, see synth/recipe.py")
                try:
                    rest = recipe.expand(parser, rest, "_".join(words))
                except recipe.RecipeError as exc:
                    print(f"synth {' '.join(words)}: {exc}", file=sys.stderr)
                    return 2
            args = parser.parse_args(rest)
            return int(module.run(args) or 0)
    group = [w for w in commands if w[0] == argv[0]]
    if group:
        print(f"synth {argv[0]}: choose one of: " + ", ".join(" ".join(w[1:]) for w in sorted(group)), file=sys.stderr)
    else:
        print(f"synth: unknown command {' '.join(argv[:2])!r}\n\n" + _usage(commands), file=sys.stderr)
    return 2
