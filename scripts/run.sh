#!/usr/bin/env bash
# `make run`: start anchorage-server in the foreground on the embedded
# default. On first start (empty data directory) it loads the demo corpus
# when it is at hand, through the real CLI against a private socket, then
# serves it.
#
#   ANCHORAGE_DATA       data directory      (default ./var/anchorage)
#   ANCHORAGE_LISTEN     listen URL          (default tcp://127.0.0.1:7700)
#   ANCHORAGE_DEMO_DATA  demo corpus folder  (default ../shared/data/sotu-2models)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${ANCHORAGE_BIN:-$root/build}
data=${ANCHORAGE_DATA:-$root/var/anchorage}
listen=${ANCHORAGE_LISTEN:-tcp://127.0.0.1:7700}
demo=${ANCHORAGE_DEMO_DATA:-$root/../shared/data/sotu-2models}
server=$bin/anchorage-server
cli=$bin/anchorage
rel() { realpath -s --relative-to="$root" "$1" 2>/dev/null || echo "$1"; }
# the client's default is tcp://127.0.0.1:7700: name another listener
srvopt=""
if [ "$listen" != "tcp://127.0.0.1:7700" ]; then srvopt=" --server $listen"; fi

mkdir -p "$data"
if [ -z "$(ls -A "$data" 2>/dev/null)" ]; then
  jsonl=$demo/sotu_chunks.jsonl
  fvecs=$demo/sotu_all-MiniLM-L6-v2_384.fvecs
  if [ -f "$jsonl" ] && [ -f "$fvecs" ]; then
    echo "anchorage: first start: loading the demo corpus from $(rel "$demo")"
    sock="ipc://$data/.setup.sock"
    "$server" --data "$data" --listen "$sock" --quiet &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
      "$cli" --server "$sock" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    "$cli" --server "$sock" collection create sotu
    id=$("$cli" --server "$sock" contract register sotu examples/sotu-minilm.contract.json | tail -n 1)
    "$cli" --server "$sock" load sotu --contract "$id" "$jsonl" \
        --vectors "$fvecs" --chunk-field start_char
    kill -TERM $pid
    wait $pid
    trap - EXIT
    rm -f "$data/.setup.sock"
    cat <<MSG

anchorage: demo corpus loaded: 90 passages of the 2022 State of the Union,
embedded with all-MiniLM-L6-v2 (contract $id).
In a second terminal, ask for the passages nearest to passage 5:

  $(rel "$cli")${srvopt} query sotu --vectors $(rel "$fvecs") --rows 5 -k 3 --text

MSG
  else
    cat <<MSG
anchorage: empty data directory and no demo corpus at $(rel "$demo")
(set ANCHORAGE_DEMO_DATA to a folder with sotu_chunks.jsonl and
sotu_all-MiniLM-L6-v2_384.fvecs to load it). To start from your own data, in
a second terminal:

  $(rel "$cli")${srvopt} collection create docs
  $(rel "$cli")${srvopt} contract register docs my-contract.json   # prints the contract ID
  $(rel "$cli")${srvopt} load docs --contract ID passages.jsonl

MSG
  fi
fi
exec "$server" --data "$data" --listen "$listen"
