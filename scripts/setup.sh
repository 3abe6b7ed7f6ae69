#!/usr/bin/env bash
# Create .venv at the repository root and install surveil into it (editable). Idempotent and quiet when up to date.
#   scripts/setup.sh          runtime: torch/torchvision (CPU wheels where the machine provides them), surveil
#   scripts/setup.sh --dev    also pytest and ruff, and the GStreamer RTSP server the ingest tests stream from
#                             (system packages, best effort: without them those tests skip with a message)
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

stamp=.venv/.surveil-setup
hash=$(sha256sum pyproject.toml | cut -c1-16)
installed=$(cat "$stamp" 2>/dev/null || true)
# Reinstall when pyproject.toml changed, or when dev tools are wanted and only the runtime is installed.
if [[ $installed != "$hash dev=1" && $installed != "$hash dev=$DEV" ]]; then
  echo "setup: installing dependencies into .venv (a few minutes the first time)"
  # torch first and pinned with torchvision, so the resolver never swaps in a torchvision built for another torch.
  "${PIP[@]}" torch==2.14.1 torchvision==0.29.1
  if [[ $DEV == 1 ]]; then
    "${PIP[@]}" -e ".[dev]"
  else
    "${PIP[@]}" -e .
  fi
  echo "$hash dev=$DEV" > "$stamp"
fi

if [[ $DEV == 1 ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  bash scripts/install_rtsp_test_server.sh || echo "setup: RTSP test server not installed; RTSP tests will skip" >&2
fi
echo "setup: ready (.venv/bin/surveil)"
