#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, offline. CI runs exactly this.
set -uo pipefail
cd "$(dirname "$0")/.."
ADSEARCH_BROWSER_TESTS=1 bash scripts/setup.sh || exit 1
export HF_HUB_OFFLINE=1
.venv/bin/ruff check . || exit 1
# the layers and no-cycles contracts of pyproject.toml [tool.importlinter]
.venv/bin/lint-imports --no-cache > .lint-imports.log 2>&1 || { cat .lint-imports.log; exit 1; }
grep -E "KEPT|BROKEN" .lint-imports.log
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" = 5 ]; then
  echo "test: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
