#!/usr/bin/env bash
# Server benchmark (issue 3): the verify listener under wrk, against a bare
# fasthttp handler answering 200, each pair measured in the same run.
#
#   bench/server/run.sh            (or: make bench-server)
#   DURATION=10s CONNS=64 bench/server/run.sh
#
# The server is pinned to CPU 0 (taskset), wrk -t1 -c$CONNS keep-alive to
# CPU 1, all on 127.0.0.1, each run bounded by $DURATION. Server CPU per
# request = (utime+stime of the server process during the run) / requests.
# Needs: go, wrk, taskset, curl. Writes a Markdown report to stdout and to
# $OUT (default bench-server.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
NTOK=${NTOK:-4000}
OUT=${OUT:-bench-server.md}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-18480}
APORT=$((PORT + 1))

for t in go wrk taskset curl; do
	command -v "$t" >/dev/null || { echo "bench-server: $t is required" >&2; exit 1; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "building..." >&2
go build -o "$WORK/jwtgate" ./cmd/jwtgate
go build -o "$WORK/bare" ./bench/server/bare
go build -o "$WORK/gentokens" ./bench/server/gentokens

echo "minting tokens..." >&2
"$WORK/gentokens" -kind valid -n "$NTOK" -pub "$WORK/pub.pem" >"$WORK/valid.txt"
head -n 1 "$WORK/valid.txt" >"$WORK/one.txt"
"$WORK/gentokens" -kind expired -n "$NTOK" >"$WORK/expired.txt"
"$WORK/gentokens" -kind unknown-kid -n "$NTOK" >"$WORK/unknown.txt"

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

wait_http() {
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench-server: $1 did not come up" >&2
	return 1
}

ADMIN_TOKEN=bench-admin-token-0123456789abcdef
export JWTGATE_ADMIN_TOKEN=$ADMIN_TOKEN

# start_jwtgate <token-cache-size>: starts jwtgate pinned to SERVER_CPU and
# registers the benchmark key; sets SPID.
start_jwtgate() {
	rm -rf "$WORK/data"
	taskset -c "$SERVER_CPU" "$WORK/jwtgate" serve --data-dir "$WORK/data" \
		--addr "127.0.0.1:$PORT" --admin-addr "127.0.0.1:$APORT" \
		--token-cache-size "$1" --claim-header groupRef=X-Group-Ref \
		--claim-header consumerRef=X-Consumer-Ref --log-level warn 2>"$WORK/serve.log" &
	SPID=$!
	PIDS+=("$SPID")
	wait_http "http://127.0.0.1:$PORT/readyz"
	"$WORK/jwtgate" keys add --admin-url "http://127.0.0.1:$APORT" --project bench \
		--kid bench --public-key "$WORK/pub.pem" >/dev/null
}

start_bare() {
	taskset -c "$SERVER_CPU" "$WORK/bare" -addr "127.0.0.1:$PORT" &
	SPID=$!
	PIDS+=("$SPID")
	wait_http "http://127.0.0.1:$PORT/"
}

stop_server() {
	kill "$SPID" 2>/dev/null || true
	wait "$SPID" 2>/dev/null || true
}

# measure <name> <tokens file> <expected status>: runs wrk against the
# running server; appends a result row.
ROWS=()
declare -A RPS CPU
measure() {
	local name=$1 tokens=$2 expect=$3
	# One token: a static header (wrk's fast path); several: the Lua script
	# (which costs wrk more per request, so compare such runs with each other).
	local wrkargs
	if [ "$(wc -l <"$tokens")" -le 1 ]; then
		wrkargs=(-H "Authorization: Bearer $(head -n1 "$tokens")")
	else
		wrkargs=(-s bench/server/tokens.lua)
	fi
	# warm up (caches, connections), not measured
	TOKENS=$tokens taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d1s "${wrkargs[@]}" \
		"http://127.0.0.1:$PORT/v1/verify" >/dev/null
	local c0 r0 c1 r1 out reqs rps non2xx
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(head -n1 "$tokens")" "http://127.0.0.1:$PORT/v1/verify")
	if [ "$code" != "$expect" ]; then
		echo "bench-server: $name: a sample request got $code, want $expect" >&2
		exit 1
	fi
	r0=$(rss_kb "$SPID")
	c0=$(cpu_ticks "$SPID")
	out=$(TOKENS=$tokens taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" "${wrkargs[@]}" \
		"http://127.0.0.1:$PORT/v1/verify")
	c1=$(cpu_ticks "$SPID")
	r1=$(rss_kb "$SPID")
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
	non2xx=${non2xx:-0}
	local us
	us=$(awk -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
	RPS[$name]=$rps
	CPU[$name]=$us
	ROWS+=("| $name | $rps | $us | $reqs | $non2xx | $((r0 / 1024)) → $((r1 / 1024)) |")
	echo "  $name: $rps req/s, $us µs CPU/request, non-2xx $non2xx of $reqs" >&2
}

echo "engine cold verify (go test -bench, pinned to CPU $SERVER_CPU)..." >&2
ENGINE_NS=$(taskset -c "$SERVER_CPU" go test -run '^$' -bench 'BenchmarkVerify/bits=2048/path=cold$' \
	-benchtime 2s -count 5 -cpu 1 ./engine | awk '/ns\/op/ {print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
ENGINE_US=$(awk -v ns="$ENGINE_NS" 'BEGIN {printf "%.1f", ns / 1000}')
echo "  engine cold verify: $ENGINE_US µs" >&2

echo "running wrk -t1 -c$CONNS -d$DURATION per scenario..." >&2
head -n 1 "$WORK/expired.txt" >"$WORK/expired1.txt"
head -n 1 "$WORK/unknown.txt" >"$WORK/unknown1.txt"
start_bare
measure "bare fasthttp 200" "$WORK/one.txt" 200
measure "bare fasthttp 200, Lua client" "$WORK/valid.txt" 200
stop_server

start_jwtgate 0
measure "jwtgate, token cache off, unique tokens, Lua client" "$WORK/valid.txt" 200
stop_server

start_jwtgate 16384
measure "jwtgate, token cache on, one token" "$WORK/one.txt" 200
measure "jwtgate, unknown-kid flood, one token" "$WORK/unknown1.txt" 401
measure "jwtgate, expired flood, one token" "$WORK/expired1.txt" 401
measure "jwtgate, unknown-kid flood, unique kids, Lua client" "$WORK/unknown.txt" 401
measure "jwtgate, expired flood, unique tokens, Lua client" "$WORK/expired.txt" 401
stop_server

start_bare
measure "bare fasthttp 200 (again)" "$WORK/one.txt" 200
stop_server

BARE=$(awk -v a="${RPS[bare fasthttp 200]}" -v b="${RPS[bare fasthttp 200 (again)]}" 'BEGIN {printf "%.0f", (a + b) / 2}')
ratio() { awk -v x="$1" -v y="$2" 'BEGIN {printf "%.2f", x / y}'; }
BARE_LUA=${RPS[bare fasthttp 200, Lua client]}
{
	echo "Server benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(go version | awk '{print $3}')."
	echo "Server pinned to CPU $SERVER_CPU, \`wrk -t1 -c$CONNS -d$DURATION\` keep-alive pinned to CPU $CLIENT_CPU, 127.0.0.1."
	echo "\"one token\": a static Authorization header; \"Lua client\": $NTOK distinct tokens sent in turn by bench/server/tokens.lua."
	echo
	echo "| scenario | req/s | server CPU µs/req | requests | non-2xx | RSS MiB before → after |"
	echo "|---|---:|---:|---:|---:|---|"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "Bare handler req/s, static header (mean of the two bare runs): $BARE; with the Lua client: $BARE_LUA."
	echo "Engine cold verify (BenchmarkVerify/bits=2048/path=cold, -cpu 1, median of 5, same core): $ENGINE_US µs."
	echo
	echo "| target | measured | goal |"
	echo "|---|---:|---|"
	echo "| cache off: server CPU/verify − engine cold verify | $(awk -v a="${CPU[jwtgate, token cache off, unique tokens, Lua client]}" -v b="$ENGINE_US" 'BEGIN {printf "%.1f µs", a - b}') | ≤ 10 µs |"
	echo "| cache on, one token: req/s ÷ bare | $(ratio "${RPS[jwtgate, token cache on, one token]}" "$BARE") | ≥ 0.8 |"
	echo "| unknown-kid flood (one token): req/s ÷ bare | $(ratio "${RPS[jwtgate, unknown-kid flood, one token]}" "$BARE") | ≥ 0.8 |"
	echo "| expired flood (one token): req/s ÷ bare | $(ratio "${RPS[jwtgate, expired flood, one token]}" "$BARE") | ≥ 0.8 |"
	echo "| unknown-kid flood (unique kids): req/s ÷ bare (both Lua) | $(ratio "${RPS[jwtgate, unknown-kid flood, unique kids, Lua client]}" "$BARE_LUA") | ≥ 0.8 |"
	echo "| expired flood (unique tokens): req/s ÷ bare (both Lua) | $(ratio "${RPS[jwtgate, expired flood, unique tokens, Lua client]}" "$BARE_LUA") | ≥ 0.8 |"
} | tee "$OUT"
