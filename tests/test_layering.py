"""Imports flow one way: affectstudio core ← conditioning ← models ← pipelines ← apps (docs/architecture.md), and
inside apps: jobs ← training ← evaluation ← studio ← the entry points (cli, demo).

Every module of every layer is parsed (no import is executed); an import of a higher layer fails the test, and
so does an import of a top-level folder by its bare name (``import pipelines``) instead of ``affectstudio.*``.
The data packages ``affectstudio.assets`` and ``affectstudio.configs`` may be read from any layer.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"affectstudio": 0, "conditioning": 1, "models": 2, "pipelines": 3, "apps": 4}
DATA = {"assets", "configs"}
ENTRY_POINTS = {"affectstudio/__main__.py"}  # `python -m affectstudio` runs the CLI: it sits at the top
# ranks inside apps/ (a module directly in apps/ — cli.py, demo.py — is an entry point, the top)
APPS = {"jobs": 0, "training": 1, "evaluation": 2, "studio": 3}
ENTRY_RANK = len(APPS)


def apps_rank(module: str) -> int | None:
    """Rank of an ``affectstudio.apps.*`` module inside apps (None outside apps)."""
    parts = module.split(".")
    if parts[:2] != ["affectstudio", "apps"]:
        return None
    return APPS.get(parts[2], ENTRY_RANK) if len(parts) > 2 else ENTRY_RANK


def layer_of(module: str) -> int | None:
    """Rank of an ``affectstudio.*`` module name (None for data packages and outside modules)."""
    parts = module.split(".")
    if parts[0] != "affectstudio":
        return None
    if len(parts) == 1 or parts[1] not in LAYERS:
        return None if len(parts) > 1 and parts[1] in DATA else 0
    return LAYERS[parts[1]]


def package_of(path: Path) -> list[str]:
    """``models/portrait/codec.py`` → ``["affectstudio", "models", "portrait"]`` (the module's package)."""
    rel = path.relative_to(ROOT).with_suffix("").parts
    pkg = list(rel[:-1])
    return pkg if pkg[0] == "affectstudio" else ["affectstudio", *pkg]


def imports_of(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = package_of(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                yield node.lineno, ".".join(base + ([node.module] if node.module else []))
            elif node.module:
                yield node.lineno, node.module


def modules():
    for layer in LAYERS:
        yield from sorted((ROOT / layer).rglob("*.py"))


def test_every_layer_has_modules():
    found = {p.relative_to(ROOT).parts[0] for p in modules()}
    assert found == set(LAYERS)


def test_lower_layers_never_import_higher_ones():
    problems = []
    for path in modules():
        rel = path.relative_to(ROOT)
        own = LAYERS["apps"] if rel.as_posix() in ENTRY_POINTS else LAYERS[rel.parts[0]]
        for line, name in imports_of(path):
            if name.split(".")[0] in set(LAYERS) - {"affectstudio"} | DATA:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {name!r}: use 'affectstudio.{name}'")
                continue
            rank = layer_of(name)
            if rank is not None and rank > own:
                problems.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports the higher layer {name!r} ({rank})")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "name, rank",
    [
        ("affectstudio.media", 0),
        ("affectstudio.conditioning.face", 1),
        ("affectstudio.models.dit", 2),
        ("affectstudio.pipelines.base", 3),
        ("affectstudio.apps.cli", 4),
        ("affectstudio.assets", None),
        ("numpy", None),
    ],
)
def test_layer_of(name, rank):
    assert layer_of(name) == rank


def test_apps_subpackages_import_downward_only():
    """jobs ← training ← evaluation ← studio ← cli/demo: no front end below another, no circles."""
    problems = []
    for path in sorted((ROOT / "apps").rglob("*.py")):
        own = apps_rank(".".join(package_of(path) + [path.stem]))
        for line, name in imports_of(path):
            rank = apps_rank(name)
            if rank is not None and own is not None and rank > own:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports the higher apps package {name!r}")
    assert not problems, "\n".join(problems)


def test_apps_is_split_by_concern():
    """Only the entry points sit directly in apps/; everything else lives in a concern's subpackage."""
    flat = sorted(p.name for p in (ROOT / "apps").glob("*.py"))
    assert flat == ["__init__.py", "cli.py", "demo.py"]
    assert {p.name for p in (ROOT / "apps").iterdir() if p.is_dir() and p.name != "__pycache__"} == set(APPS)


def test_a_violation_is_caught(tmp_path, monkeypatch):
    """The checker itself works: a conditioning module importing a pipeline is reported."""
    fake = ROOT / "conditioning" / "_layering_probe.py"
    fake.write_text("from affectstudio.pipelines.base import AffectPipeline\nfrom ..models import dit\n")
    try:
        with pytest.raises(AssertionError, match="_layering_probe.py:1.*higher layer") as err:
            test_lower_layers_never_import_higher_ones()
        assert "_layering_probe.py:2" in str(err.value)
    finally:
        fake.unlink()
