#!/usr/bin/env bash
# Install the system packages that scripts/rtsp_server.py needs (GStreamer RTSP server + Python GI bindings).
# Idempotent: does nothing when they are already present. Runs as root (CI containers).
set -euo pipefail

PACKAGES=(gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Quiet on success; show apt's output only when something fails.
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_rtsp_test_server.sh: apt-get failed for: ${missing[*]}" >&2
    exit 1
fi
echo "installed: ${missing[*]}"
