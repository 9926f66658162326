"""Training recipes as versioned JSON files that the commands read: ``synth <command> --recipe FILE[:SECTION]``.

A recipe file holds one section per pipeline step (``recipes/default.json`` is the shipped model's). A section maps
the command's long option names (dashes or underscores) to values, written as on the command line would be:
numbers and strings as they are, ``true`` for a switch (``false`` leaves it off), a list for a comma list
(``[2048, 512]`` -> ``2048,512``), and ``"set": {"key": value}`` for the stage-2 and VAE ``--set KEY=VALUE``
overrides. The section becomes options placed *before* the ones typed, so anything typed wins (a budget, a device).

Why this and not flags in a script: the script (``scripts/train_default.sh``) used to be the only place the
recipe existed, as ``--set`` flags, while the code's defaults described another model. Now the script names a
section and every value lives in one reviewed file; ``synth <command> --recipe FILE:SECTION --help`` shows the
resulting defaults.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

OPTION = "--recipe"


class RecipeError(ValueError):
    """A recipe that cannot be applied; the message names the file, the section and the key."""


def split_recipe_arg(argv: list[str]) -> tuple[str | None, list[str]]:
    """Take ``--recipe X`` / ``--recipe=X`` out of ``argv``: (X or None, the rest)."""
    rest, value = [], None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == OPTION:
            if i + 1 >= len(argv):
                raise RecipeError(f"{OPTION} needs a value: FILE or FILE:SECTION")
            value, i = argv[i + 1], i + 2
            continue
        if arg.startswith(OPTION + "="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return value, rest


def load_section(spec: str, default_section: str) -> tuple[Path, str, dict]:
    """``FILE[:SECTION]`` -> (file, section name, the section's mapping)."""
    path_text, sep, section = spec.rpartition(":")
    if not sep or not path_text or "/" in section or section.endswith(".json"):
        path_text, section = spec, default_section
    path = Path(path_text)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise RecipeError(f"recipe {path}: cannot read it ({exc.strerror or exc})") from exc
    except (ValueError, RecursionError) as exc:
        raise RecipeError(f"recipe {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path}: expected an object of sections")
    if section not in data or not isinstance(data[section], dict):
        known = ", ".join(sorted(k for k, v in data.items() if isinstance(v, dict))) or "none"
        raise RecipeError(f"recipe {path}: no section {section!r} (sections: {known})")
    return path, section, data[section]


def _options_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {opt: action for action in parser._actions for opt in action.option_strings if opt.startswith("--")}


def _value_text(value: object, where: str) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        raise RecipeError(f"{where}: expected a number, a string or a list, got {json.dumps(value)}")
    if isinstance(value, list):
        if not value or any(isinstance(v, (bool, dict, list)) or v is None for v in value):
            raise RecipeError(f"{where}: a list must hold numbers or strings, got {json.dumps(value)}")
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value != value:
        raise RecipeError(f"{where}: NaN is not a value")
    return str(value)


def section_argv(parser: argparse.ArgumentParser, path: Path, section: str, values: dict) -> list[str]:
    """The options a recipe section stands for, checked against ``parser``'s options."""
    options = _options_of(parser)
    argv: list[str] = []
    for key, value in values.items():
        if key.startswith("_"):  # "_why": comments
            continue
        where = f"recipe {path} [{section}] {key}"
        flag = "--" + key.replace("_", "-")
        action = options.get(flag)
        if action is None or flag == OPTION:
            raise RecipeError(f"{where}: {parser.prog} has no option {flag}")
        if key == "set":
            if not isinstance(value, dict):
                raise RecipeError(f"{where}: expected an object of KEY: VALUE overrides")
            for name, item in value.items():
                text = str(item).lower() if isinstance(item, bool) else _value_text(item, f"{where}.{name}")
                argv += [flag, f"{name}={text}"]
        elif action.nargs == 0:  # a switch
            if not isinstance(value, bool):
                raise RecipeError(f"{where}: {flag} is a switch, expected true or false")
            if value:
                argv.append(flag)
        else:
            argv += [flag, _value_text(value, where)]
    return argv


def expand(parser: argparse.ArgumentParser, argv: list[str], default_section: str) -> list[str]:
    """``argv`` with ``--recipe FILE[:SECTION]`` replaced by that section's options (placed first: typed ones win)."""
    spec, rest = split_recipe_arg(argv)
    if spec is None:
        return rest
    path, section, values = load_section(spec, default_section)
    return section_argv(parser, path, section, values) + rest
