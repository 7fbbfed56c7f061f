#!/usr/bin/env bash
# The main job on the bundled sample: set up, generate the synthetic ads, ingest them into the
# embedded store (./adsearch-data), run example searches, keep a board, save a watch, count per month.
# No server to start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

[ -f sample-ads/metadata.csv ] || python -m dataset.synthetic --out sample-ads
adsearch ingest sample-ads/images --metadata sample-ads/metadata.csv --schema sample-ads/metadata.schema.json
for query in "cheap burger deal" "VOLTARA" "I should buy this car because it is safe"; do
  echo
  echo "\$ adsearch search \"$query\" -k 3"
  adsearch search "$query" -k 3
done
echo
echo "\$ adsearch search \"special offer\" --where category=food --where \"budget>=20000\" -k 3"
adsearch search "special offer" --where category=food --where "budget>=20000" -k 3
echo
echo "\$ adsearch facets category"
adsearch facets category
echo
echo "\$ adsearch board add \"Food deals\" (the top 3 food ads) ; adsearch facets board"
adsearch board show "Food deals" > /dev/null 2>&1 || adsearch board create "Food deals" --description "demo board"
ids=$(adsearch search "special offer" --where category=food -k 3 --json \
  | python -c 'import json, sys; print(" ".join(h["id"] for h in json.load(sys.stdin)["hits"]))')
adsearch board add "Food deals" $ids
adsearch facets board
echo
echo "\$ adsearch watch add burgers '\"burger\"'   # collects every new ad that says it"
adsearch watch list --json | grep -q '"name": "burgers"' || adsearch watch add burgers '"burger"'
adsearch watch list
echo
echo "\$ adsearch trend --by month --where category=food"
adsearch trend --by month --where category=food
echo
echo "Try your own: .venv/bin/adsearch search \"your query\" [--mode hybrid|visual|text|keyword] [--where field=value]"
echo "Ingest real ads: .venv/bin/adsearch ingest PATH/TO/IMAGES"
echo "Web UI and JSON API: .venv/bin/adsearch serve   then open http://127.0.0.1:8000/"
