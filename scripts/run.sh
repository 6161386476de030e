#!/usr/bin/env bash
# `make run`: start anchorage-server in the foreground on the embedded
# default. On first start (empty data directory) it loads the demo corpus
# when it is at hand, through the real CLI against a private socket, then
# serves it.
#
#   ANCHORAGE_DATA       data directory      (default ./var/anchorage)
#   ANCHORAGE_LISTEN     listen URL          (default tcp://127.0.0.1:7700)
#   ANCHORAGE_DEMO_DATA  demo corpus folder  (default ../shared/data/sotu-2models)
#   ANCHORAGE_BIN        where the binaries are (default ./build)
#   ANCHORAGE_SETUP_ONLY set: stop after the first-start setup (tests)
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

# Something already answering on the listen address (another server, on
# a shared machine) is found before the demo load, not after it printed a
# hint that would query that other server.
listening() { # ADDR: [tls+]tcp[46]://HOST:PORT, HOST:PORT, ipc://PATH
  local a=${1#tls+} hp host port rc
  case "$a" in
    ipc://*) [ -S "${a#ipc://}" ] && "$cli" --server "$a" --timeout 500 ping >/dev/null 2>&1 ;;
    *) hp=${a#*://}; host=${hp%:*}; port=${hp##*:}
       host=${host#[}; host=${host%]}
       case "$host" in ""|"*"|0.0.0.0) host=127.0.0.1 ;; "::") host=::1 ;; esac
       # a connection accepted, or one that hangs (a full backlog, a
       # stopped process): the port is taken either way
       timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
       rc=$?
       [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] ;;
  esac
}
if [ -z "${ANCHORAGE_SETUP_ONLY:-}" ]; then
  if listening "$listen"; then
    echo "anchorage: $listen is already in use (another anchorage-server?);" \
         "choose another with ANCHORAGE_LISTEN=tcp://127.0.0.1:PORT" >&2
    exit 1
  fi
  http=${ANCHORAGE_HTTP:-}
  if [ -n "$http" ] && [ "$http" != off ] && listening "$http"; then
    echo "anchorage: ANCHORAGE_HTTP $http is already in use; choose another" \
         "port, or ANCHORAGE_HTTP=off" >&2
    exit 1
  fi
fi

mkdir -p "$data"
# Present from the start of the demo load to its end: a load that was cut
# short (Ctrl-C, a crash) is run again at the next start. Every step is
# idempotent: an existing collection or contract is kept, records already
# stored come back "unchanged".
marker=$data/.demo-loading
if [ -z "$(ls -A "$data" 2>/dev/null)" ] || [ -f "$marker" ]; then
  jsonl=$demo/sotu_chunks.jsonl
  fvecs=$demo/sotu_all-MiniLM-L6-v2_384.fvecs
  if [ -f "$jsonl" ] && [ -f "$fvecs" ]; then
    if [ -f "$marker" ]; then
      echo "anchorage: the demo load of an earlier start did not finish; loading it again"
    else
      echo "anchorage: first start: loading the demo corpus from $(rel "$demo")"
    fi
    touch "$marker"
    # A socket path has a limit of about 108 bytes: a short private one,
    # not one inside a data directory that may have a long path.
    sockdir=$(mktemp -d "${TMPDIR:-/tmp}/anchorage-setup.XXXXXX")
    sock="ipc://$sockdir/s.sock"
    "$server" --data "$data" --listen "$sock" --http off --quiet &
    pid=$!
    trap 'kill $pid 2>/dev/null || true; rm -rf "$sockdir"' EXIT
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
    rm -rf "$sockdir"
    rm -f "$marker"
    cat <<MSG

anchorage: demo corpus loaded: 90 passages of the 2022 State of the Union,
embedded with all-MiniLM-L6-v2 (contract $id).
In a second terminal, ask for the passages nearest to passage 5:

  $(rel "$cli")${srvopt} query sotu --vectors $(rel "$fvecs") --rows 5 -k 3 --text

MSG
  else
    cat <<MSG
anchorage: empty data directory and no demo corpus at $demo
(set ANCHORAGE_DEMO_DATA to a folder with sotu_chunks.jsonl and
sotu_all-MiniLM-L6-v2_384.fvecs to load it). To start from your own data, in
a second terminal:

  $(rel "$cli")${srvopt} collection create docs
  $(rel "$cli")${srvopt} contract register docs examples/sotu-minilm.contract.json
  $(rel "$cli")${srvopt} load docs passages.jsonl

(the contract file names your embedding model, dim and metric: edit a copy of
the example; passages.jsonl holds one {"source", "text", "vector": [...]} per
line, or give the vectors as --vectors FILE.fvecs|.npy, row i for line i; see
README.md, "Loading a corpus").

MSG
  fi
fi
if [ -n "${ANCHORAGE_SETUP_ONLY:-}" ]; then exit 0; fi
exec "$server" --data "$data" --listen "$listen"
