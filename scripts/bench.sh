#!/bin/sh
# scripts/bench.sh — run by `make bench` after `make build`: the query-path
# benchmark (bench/query_bench.c), JSON lines on stdout, also kept in
# $BUILD/bench-query.jsonl.
#
#   make bench                  full run (Fashion-MNIST 60k, scaling 10k and
#                               100k; under ~10 minutes on 2 idle cores)
#   BENCH_ARGS=--quick make bench   about 5 minutes on a busy 2-core box
#   BENCH_ARGS=--big make bench     adds the 1M-vector scaling point
#
# The numbers depend on what else runs on the machine: run it on an idle one
# (check `uptime`) and compare ratios measured within one run, never numbers
# from different runs.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build="$here/$build" ;; esac
data=${ANC_DATA_DIR:-"$here/../shared/data"}
bin="$build/query_bench"

if [ ! -x "$bin" ]; then
	echo "bench.sh: $bin not built (run make build)" >&2
	exit 1
fi
if [ ! -d "$data/fashion-mnist" ]; then
	echo "bench.sh: no Fashion-MNIST under $data (set ANC_DATA_DIR)" >&2
	exit 1
fi
echo "bench.sh: load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?') on $(nproc 2>/dev/null || echo '?') CPUs" >&2
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
"$bin" --data "$data" --server-bin "$build/anchorage-server" ${BENCH_ARGS:-} |
	tee "$build/bench-query.jsonl"
# The load at the end too: a run is only as quiet as its noisiest minute.
echo "bench.sh: load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?') at the end" >&2
