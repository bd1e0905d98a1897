"""The layout contract of DESIGN.md: one import package, explicit package list, data files in the wheel."""

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

    assert Path(affectstudio.models.__file__).parent == ROOT / "models"
    assert resources.files("affectstudio.assets").is_dir()


def test_every_package_is_listed_in_pyproject():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"affectstudio"}
    for layer in LAYERS:
        for init in (ROOT / layer).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / layer).parts
            on_disk.add(".".join(["affectstudio", layer, *rel]))
    assert on_disk <= listed, f"packages missing from [tool.setuptools] packages: {sorted(on_disk - listed)}"


def test_model_index_names_affectstudio_modules():
    for index in ROOT.joinpath("assets").rglob("model_index.json"):
        components = {k: v for k, v in json.loads(index.read_text()).items()
                      if isinstance(v, list) and len(v) == 2 and all(isinstance(x, (str, type(None))) for x in v)}
        assert components, f"{index} lists no components"
        for key, value in components.items():
            if value[0] not in (None, "diffusers", "transformers"):
                assert value[0].startswith("affectstudio."), f"{index}: {key} saved as {value}"


@pytest.mark.slow
def test_wheel_installs_and_imports_everything(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheel_dir), str(ROOT)], check=True)
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
    code = ("import importlib, sys\n"
            f"mods = {all_modules()!r}\n"
            "for m in mods:\n"
            "    mod = importlib.import_module(m)\n"
            "    assert 'site-packages' in (mod.__file__ or ''), (m, mod.__file__)\n"
            "print(len(mods))\n")
    out = subprocess.run([py, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip()) == len(all_modules())
