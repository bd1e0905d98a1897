"""Convert an AffectDiT checkpoint saved before named content streams (one ``content_dim`` stream) to the
multi-stream layout: ``content_projector.*`` → ``content_projectors.<stream>.*``, ``null_content`` →
``null_contents.<stream>``, and ``content_dim``/``aligned_content`` in config.json → ``content_streams``/
``aligned_streams``. Rewrites the folder in place; a converted folder is left as it is.

    python scripts/convert_dit_checkpoint.py assets/talking_portrait/dit --stream audio
"""

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file, save_file


def convert(folder: Path, stream: str) -> bool:
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    if "content_streams" in cfg:
        return False
    weights_path = folder / "diffusion_pytorch_model.safetensors"
    state = load_file(weights_path)
    renamed = {}
    for key, value in state.items():
        if key.startswith("content_projector."):
            key = f"content_projectors.{stream}." + key[len("content_projector.") :]
        elif key == "null_content":
            key = f"null_contents.{stream}"
        renamed[key] = value.contiguous()
    cfg["content_streams"] = {stream: cfg.pop("content_dim")}
    cfg["aligned_streams"] = None if cfg.pop("aligned_content", True) else []
    cfg.setdefault("speaker_dim", 0)
    save_file(renamed, str(weights_path), metadata={"format": "pt"})
    cfg_path.write_text(json.dumps(dict(sorted(cfg.items())), indent=2) + "\n")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the dit/ folder of a saved pipeline")
    parser.add_argument("--stream", default="audio", help="name of the single content stream (portrait: audio)")
    args = parser.parse_args()
    print("converted" if convert(args.folder, args.stream) else "already in the multi-stream layout")


if __name__ == "__main__":
    main()
