#!/usr/bin/env bash
# Set up a fresh machine for podcast: system tools (apt) and a virtualenv in .venv.
# Safe to rerun; installs only what is missing. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# ffmpeg: mixing and encoding; espeak-ng: the fallback voice; Noto CJK: covers.
# chromium and Node.js run the tests that render the article and parse the feed
# with the Podcast Index parser (tests/js).
# python3-venv: Debian's python3 cannot make the .venv without it.
APT_PACKAGES=(python3-venv ffmpeg espeak-ng fonts-noto-cjk chromium)
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]} (apt)"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
if [ ! -d tests/js/node_modules/podcast-partytime ]; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: done (.venv/bin/podcast)"
