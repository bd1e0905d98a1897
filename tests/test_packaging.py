"""The layout contract of docs/architecture.md: one import package whose layers are the top-level folders (reached
through symlinks in affectstudio/, so static tools resolve them from a plain checkout), data files in the wheel."""

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["conditioning", "models", "pipelines", "apps", "configs", "assets"]


def _modules(base: Path, prefix: str) -> list[str]:
    names = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        names.append(".".join([prefix, *parts]))
    return names


def all_modules() -> list[str]:
    mods = _modules(ROOT / "affectstudio", "affectstudio")
    for layer in LAYERS:
        mods += _modules(ROOT / layer, f"affectstudio.{layer}")
    return [m for m in mods if not m.endswith("__main__")]


def test_layers_import_as_subpackages():
    import affectstudio.models

    assert Path(affectstudio.models.__file__).resolve().parent == ROOT / "models"
    assert resources.files("affectstudio.assets").is_dir()


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_is_a_real_path_inside_the_package(layer):
    """``affectstudio/<layer>`` is a relative symlink to the top-level folder: an IDE following
    ``from affectstudio.models.dit import AffectDiT`` from a plain checkout lands in ``models/dit.py``."""
    link = ROOT / "affectstudio" / layer
    assert link.is_symlink() and os.readlink(link) == f"../{layer}"
    assert link.resolve() == ROOT / layer and (link / "__init__.py").is_file()


def test_packaging_finds_every_package():
    import tomllib

    from setuptools import find_packages

    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    found = set(find_packages(str(ROOT), include=find["include"]))
    on_disk = {"affectstudio"}
    for layer in LAYERS:
        for init in (ROOT / layer).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / layer).parts
            on_disk.add(".".join(["affectstudio", layer, *rel]))
    assert on_disk <= found, f"packages the build would miss: {sorted(on_disk - found)}"
    assert all(p.startswith("affectstudio") for p in found)


def test_model_index_names_affectstudio_modules():
    for index in ROOT.joinpath("assets").rglob("model_index.json"):
        components = {
            k: v
            for k, v in json.loads(index.read_text()).items()
            if isinstance(v, list) and len(v) == 2 and all(isinstance(x, (str, type(None))) for x in v)
        }
        assert components, f"{index} lists no components"
        for key, value in components.items():
            if value[0] not in (None, "diffusers", "transformers"):
                assert value[0].startswith("affectstudio."), f"{index}: {key} saved as {value}"


@pytest.mark.slow
def test_wheel_installs_and_imports_everything(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = wheel_dir.glob("affectstudio-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not any(n.split("/")[0] in LAYERS for n in names), "layers must install under affectstudio/"
    for asset in ROOT.joinpath("assets").rglob("*"):
        if asset.suffix in (".json", ".safetensors", ".wav", ".png", ".md", ".txt"):
            assert "affectstudio/" + str(asset.relative_to(ROOT)) in names, f"{asset} is not in the wheel"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    # Dependencies come from the test's own environment; the project itself only from the wheel.
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    code = (
        "import importlib, sys\n"
        f"mods = {all_modules()!r}\n"
        "for m in mods:\n"
        "    mod = importlib.import_module(m)\n"
        "    assert 'site-packages' in (mod.__file__ or ''), (m, mod.__file__)\n"
        "print(len(mods))\n"
    )
    out = subprocess.run([py, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip()) == len(all_modules())
