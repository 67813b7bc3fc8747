"""README's commands run as written, in order (tools/readme_walk.py), at tiny settings."""

import os

from tools import readme_scratch, readme_walk


def test_commands_are_split_into_steps_without_comments():
    text = (
        "intro\n```bash\n"
        'python3 -m venv .venv && pip install -e ".[test]"   # set up\n'
        "python train.py --flagfile=configs/smoke.cfg \\\n    --steps=2   # a comment\n"
        "# a whole-line comment\n"
        "python -m bench.learning_check --models='efanet;adain'\n"
        "```\n```python\nimport keras\nprint(1)  # kept\n```\n"
    )
    commands = readme_walk.readme_commands(text)
    assert [c.text for c in commands] == [
        "python3 -m venv .venv",
        'pip install -e ".[test]"',
        "python train.py --flagfile=configs/smoke.cfg --steps=2",
        "python -m bench.learning_check --models='efanet;adain'",
        "import keras\nprint(1)  # kept",
    ]
    assert commands[-1].python and not commands[0].python


def test_every_readme_command_has_a_rule():
    commands = readme_walk.load_readme_commands()
    assert len(commands) > 30
    unnamed = [c.text for c in commands if readme_walk.match_rule(c) is None]
    assert not unnamed, f"README commands that tools/readme_walk.py has no rule for: {unnamed}"
    for command in commands:
        covered = readme_walk.match_rule(command).covered
        if covered:
            path, name = covered.split("::")
            with open(os.path.join(os.path.dirname(readme_walk.README), path)) as f:
                assert f"def {name}(" in f.read(), covered
    # The commands a newcomer runs first, and the examples using runs/cpu_preview, do run.
    ran = [c.text for c in commands if not readme_walk.match_rule(c).skip]
    assert any("configs/smoke.cfg" in t for t in ran) and any("runs/cpu_preview" in t for t in ran)


def test_placeholders_become_the_scratch_folders_files():
    line = "python -m bench.diagnose --content_dir=/path/content [--checkpoint=runs/X --seed=1]"
    assert readme_walk.substitute(line) == (
        "python -m bench.diagnose --content_dir=../shared/data/train/content"
    )


def test_readme_walk(tmp_path):
    work = readme_walk.make_scratch(str(tmp_path))
    # The walk generates its own images and random VGG; it reads nothing outside tmp_path.
    scratch_weights = os.path.join(os.path.dirname(work), readme_scratch.SHARED, "weights")
    assert os.path.isfile(os.path.join(scratch_weights, readme_scratch.VGG_FILES[1]))
    lines = []
    outcomes = readme_walk.walk(work, log=lines.append)
    failed = [o for o in outcomes if o.status == "FAILED"]
    assert not failed, "\n".join(lines)
    assert sum(o.status == "ok" for o in outcomes) > 20
