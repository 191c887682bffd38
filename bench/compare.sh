#!/usr/bin/env bash
# bench/compare.sh BASE OUTDIR: the interleaved comparison behind
# `make bench-compare` and `make bench-gate` (run it from the repository
# root; the make targets set the knobs below).
#
# It checks BASE out into a temporary git worktree, builds the benchmark
# test binaries of BASE and of the working tree, and runs them alternately,
# one -count at a time (the side that goes first alternates too), so that
# machine noise falls on both sides alike. Results go to OUTDIR/base.txt and
# OUTDIR/head.txt (Go benchmark format, with a commit: line).
#
# With GATE=1 it then asks bench/cmd/benchgate which benchmarks are too
# noisy to decide, reruns those (RERUNS times at most, BENCH_COUNT rounds
# each), and ends with benchgate's decision: OUTDIR/compare.md and its exit
# status (1 on a regression).
#
# Knobs (environment): GO, BENCH (regexp), BENCH_COUNT, BENCH_TIME,
# BENCH_PKG, BENCH_SUITE (head: run head's bench/ on both sides; base: each
# side its own), HEAD_TAGS (build tags for the head binary only, e.g.
# jwtgate_inject_cold), GATE, THRESHOLD, RERUNS, GATE_FLAGS (more benchgate
# flags, e.g. --strict).
set -euo pipefail
base=${1:?usage: bench/compare.sh BASE OUTDIR}
out=${2:?usage: bench/compare.sh BASE OUTDIR}
GO=${GO:-go}
BENCH=${BENCH:-.}
BENCH_COUNT=${BENCH_COUNT:-6}
BENCH_TIME=${BENCH_TIME:-1s}
BENCH_PKG=${BENCH_PKG:-./bench/}
BENCH_SUITE=${BENCH_SUITE:-head}
HEAD_TAGS=${HEAD_TAGS:-}
THRESHOLD=${THRESHOLD:-5%}
RERUNS=${RERUNS:-2}

root=$(pwd)
tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add --detach "$tmp/base" "$base" >/dev/null 2>&1 ||
	{ echo "bench/compare.sh: cannot check out BASE=$base (a commit, branch or tag of this repository)" >&2; exit 2; }
if [ "$BENCH_SUITE" = head ]; then rm -rf "$tmp/base/bench"; cp -R bench "$tmp/base/bench"; fi
echo "building base ($base) and head test binaries${HEAD_TAGS:+ (head with -tags $HEAD_TAGS)}" >&2
(cd "$tmp/base" && "$GO" test -c -o "$tmp/base.test" "$BENCH_PKG") || {
	echo "bench/compare.sh: cannot build the benchmarks of BASE=$base (BENCH_SUITE=$BENCH_SUITE: head runs the working tree's bench/ on both sides); if bench/ now needs code that BASE lacks, try BENCH_SUITE=base" >&2
	exit 2
}
"$GO" test -c ${HEAD_TAGS:+-tags "$HEAD_TAGS"} -o "$tmp/head.test" "$BENCH_PKG"

mkdir -p "$out"
dirty() { git -C "$1" diff --quiet HEAD -- 2>/dev/null || echo -dirty; }
{ echo "commit: $(git -C "$tmp/base" rev-parse --short HEAD)"; echo "nproc: $(nproc)"; } > "$out/base.txt"
{ echo "commit: $(git rev-parse --short HEAD)$(dirty .)${HEAD_TAGS:+ (tags $HEAD_TAGS)}"; echo "nproc: $(nproc)"; } > "$out/head.txt"

side() { # side base|head PATTERN
	local dir=$BENCH_PKG
	[ "$1" = base ] && dir=$tmp/base/$BENCH_PKG
	(cd "$dir" && "$tmp/$1.test" -test.run '^$' -test.bench "$2" -test.benchmem \
		-test.benchtime "$BENCH_TIME" -test.count 1 -test.timeout 30m) >> "$out/$1.txt"
}
rounds() { # rounds PATTERN LABEL
	for i in $(seq "$BENCH_COUNT"); do
		echo "$2 round $i/$BENCH_COUNT" >&2
		if [ $((i % 2)) = 1 ]; then side base "$1"; side head "$1"; else side head "$1"; side base "$1"; fi
	done
}
rounds "$BENCH" compare
if ! grep -q '^Benchmark' "$out/head.txt" || ! grep -q '^Benchmark' "$out/base.txt"; then
	echo "bench/compare.sh: BENCH='$BENCH' matched no benchmark in $BENCH_PKG (on the base or the head)" >&2
	exit 2
fi

[ "${GATE:-}" = 1 ] || exit 0
"$GO" build -o "$tmp/benchgate" ./bench/cmd/benchgate
done_reruns=0
while [ "$done_reruns" -lt "$RERUNS" ]; do
	"$tmp/benchgate" --threshold "$THRESHOLD" --rerun "$tmp/rerun" "$out/base.txt" "$out/head.txt" >&2
	pattern=$(cat "$tmp/rerun")
	[ -n "$pattern" ] || break
	done_reruns=$((done_reruns + 1))
	echo "spread wider than $THRESHOLD: rerun $done_reruns/$RERUNS of $pattern" >&2
	rounds "$pattern" "rerun $done_reruns/$RERUNS"
done
# shellcheck disable=SC2086
"$tmp/benchgate" --threshold "$THRESHOLD" --reruns "$done_reruns" --markdown "$out/compare.md" ${GATE_FLAGS:-} "$out/base.txt" "$out/head.txt"
