"""Recipes: a JSON section stands for a command's options, typed options win, bad recipes name file, section, key;
the shipped recipe parses for every step the training script runs."""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path

import pytest

from synth import cli, recipe

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "recipes" / "default.json"


def parser_for(words: tuple[str, ...]) -> argparse.ArgumentParser:
    module = importlib.import_module(cli.COMMANDS[words][0])
    parser = argparse.ArgumentParser(prog="synth " + " ".join(words))
    module.configure(parser)
    return parser


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    return path


def test_a_section_sets_options_and_typed_options_win(tmp_path):
    path = write(tmp_path, {"train_vae": {"out": "runs/x", "epochs": 7, "set": {"velocity_cond": True, "pitch_min": 21}},
                            "other": {"out": "runs/y"}})
    parser = parser_for(("train", "vae"))
    args = parser.parse_args(recipe.expand(parser, ["--recipe", str(path)], "train_vae"))
    assert args.out == "runs/x" and args.epochs == 7 and args.set == ["velocity_cond=true", "pitch_min=21"]
    typed = recipe.expand(parser, [f"--recipe={path}:other", "--epochs", "3", "--set", "pitch_min=30"], "train_vae")
    args = parser.parse_args(typed)
    assert args.out == "runs/y" and args.epochs == 3 and args.set == ["pitch_min=30"]
    args = parser.parse_args(recipe.expand(parser, ["--recipe", f"{path}:train_vae", "--set", "pitch_min=30"], "x"))
    assert args.set == ["velocity_cond=true", "pitch_min=21", "pitch_min=30"]  # the last one applies


def test_switches_lists_and_comments(tmp_path):
    path = write(tmp_path, {"codec_train": {"_why": "ignored", "out": "o", "steps": 5, "emb_norm": True,
                                            "emb_tanh": False, "stft_ffts": [2048, 64], "lr": 3e-4}})
    parser = parser_for(("codec", "train"))
    args = parser.parse_args(recipe.expand(parser, ["--recipe", str(path)], "codec_train"))
    assert args.emb_norm and not args.emb_tanh and args.stft_ffts == (2048, 64) and args.lr == 3e-4


@pytest.mark.parametrize("section,message", [
    ({"nope": 1}, r"\[codec_train\] nope: synth codec train has no option --nope"),
    ({"emb_norm": "yes"}, r"emb_norm: --emb-norm is a switch, expected true or false"),
    ({"lr": None}, r"lr: expected a number, a string or a list"),
    ({"stft_ffts": []}, r"stft_ffts: a list must hold numbers or strings"),
    ({"recipe": "x"}, r"has no option --recipe"),
])
def test_bad_sections_name_the_file_section_and_key(tmp_path, section, message):
    path = write(tmp_path, {"codec_train": section})
    with pytest.raises(recipe.RecipeError, match=re.escape(str(path)) + ".*" + message):
        recipe.expand(parser_for(("codec", "train")), ["--recipe", str(path)], "codec_train")


def test_missing_file_section_or_json(tmp_path):
    parser = parser_for(("codec", "train"))
    with pytest.raises(recipe.RecipeError, match="cannot read it"):
        recipe.expand(parser, ["--recipe", str(tmp_path / "none.json")], "codec_train")
    path = write(tmp_path, {"a": {}})
    with pytest.raises(recipe.RecipeError, match=r"no section 'b' \(sections: a\)"):
        recipe.expand(parser, ["--recipe", f"{path}:b"], "codec_train")
    path.write_text("{" * 5000)
    with pytest.raises(recipe.RecipeError, match="not valid JSON"):
        recipe.expand(parser, ["--recipe", str(path)], "codec_train")


def test_the_command_line_reports_a_bad_recipe_with_exit_2(tmp_path, capsys):
    path = write(tmp_path, {"train_vae": {"epochs": True}})
    assert cli.main(["train", "vae", "--recipe", str(path)]) == 2
    assert "recipe" in capsys.readouterr().err


def test_every_step_of_the_training_script_parses_against_its_command():
    """The script's '--recipe $R:<section>' calls, each section parsed by the command that reads it."""
    script = (ROOT / "scripts" / "train_default.sh").read_text()
    calls = re.findall(r"-m synth (\w+) (\w+) --recipe \$R:(\w+)", script)
    assert len(calls) >= 9
    sections = json.loads(SHIPPED.read_text())
    for first, second, section in calls:
        words = (first, second) if (first, second) in cli.COMMANDS else (first,)
        parser = parser_for(words)
        args = parser.parse_args(recipe.expand(parser, ["--recipe", f"{SHIPPED}:{section}"], section))
        assert section in sections and args is not None
    used = {section for *_, section in calls}
    assert used == {k for k, v in sections.items() if isinstance(v, dict)}, "a section no step reads"
