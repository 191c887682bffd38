#!/usr/bin/env bash
# Server benchmark (issue 3): the verify listener under wrk, against a bare
# fasthttp handler answering 200, each pair measured in the same run.
#
#   bench/server/run.sh            (or: make bench-server)
#   DURATION=10s CONNS=64 ROUNDS=3 bench/server/run.sh
#
# The scenarios run ROUNDS times in turn (bare, jwtgate cache off, jwtgate
# cache on, bare again), so that load from elsewhere on the machine falls
# on every scenario alike; ratios are taken within a round, and the report
# gives their median and min–max over the rounds.
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
ROUNDS=${ROUNDS:-3}
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
	RPS[$name#$ROUND]=$rps
	CPU[$name#$ROUND]=$us
	ROWS+=("| $ROUND | $name | $rps | $us | $reqs | $non2xx | $((r0 / 1024)) → $((r1 / 1024)) |")
	echo "  $name: $rps req/s, $us µs CPU/request, non-2xx $non2xx of $reqs" >&2
}

echo "engine cold verify (go test -bench, pinned to CPU $SERVER_CPU, CPU time per op)..." >&2
# cpu-ns/op: the benchmark thread's CPU time, like the server's below
ENGINE_NS=$(taskset -c "$SERVER_CPU" go test -run '^$' -bench 'BenchmarkVerify/bits=2048/path=cold$' \
	-benchtime 2s -count 5 -cpu 1 ./engine | awk '/cpu-ns\/op/ {for (i = 1; i < NF; i++) if ($(i+1) == "cpu-ns/op") print $i}' |
	sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
ENGINE_US=$(awk -v ns="$ENGINE_NS" 'BEGIN {printf "%.1f", ns / 1000}')
echo "  engine cold verify: $ENGINE_US µs CPU" >&2

echo "running wrk -t1 -c$CONNS -d$DURATION per scenario, $ROUNDS rounds..." >&2
head -n 1 "$WORK/expired.txt" >"$WORK/expired1.txt"
head -n 1 "$WORK/unknown.txt" >"$WORK/unknown1.txt"
for ROUND in $(seq "$ROUNDS"); do
	echo "round $ROUND/$ROUNDS" >&2
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
done

# Per-round values and ratios; med prints "median (min–max)" of its arguments.
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f (%.2f–%.2f)", m, a[1], a[NR]}'; }
declare -a R_CACHED C_CACHED R_UNK R_EXP R_UNKL R_EXPL OVER BARE_CPU BARE_ALL BARE_LUA_ALL
for r in $(seq "$ROUNDS"); do
	bare=$(awk -v a="${RPS[bare fasthttp 200#$r]}" -v b="${RPS[bare fasthttp 200 (again)#$r]}" 'BEGIN {printf "%.0f", (a + b) / 2}')
	lua=${RPS[bare fasthttp 200, Lua client#$r]}
	BARE_ALL+=("$bare")
	BARE_LUA_ALL+=("$lua")
	R_CACHED+=("$(awk -v x="${RPS[jwtgate, token cache on, one token#$r]}" -v y="$bare" 'BEGIN {print x / y}')")
	# the same ratio from CPU per request: what req/s would be with the server's core to itself
	C_CACHED+=("$(awk -v x="${CPU[jwtgate, token cache on, one token#$r]}" -v a="${CPU[bare fasthttp 200#$r]}" -v b="${CPU[bare fasthttp 200 (again)#$r]}" 'BEGIN {print (a + b) / 2 / x}')")
	R_UNK+=("$(awk -v x="${RPS[jwtgate, unknown-kid flood, one token#$r]}" -v y="$bare" 'BEGIN {print x / y}')")
	R_EXP+=("$(awk -v x="${RPS[jwtgate, expired flood, one token#$r]}" -v y="$bare" 'BEGIN {print x / y}')")
	R_UNKL+=("$(awk -v x="${RPS[jwtgate, unknown-kid flood, unique kids, Lua client#$r]}" -v y="$lua" 'BEGIN {print x / y}')")
	R_EXPL+=("$(awk -v x="${RPS[jwtgate, expired flood, unique tokens, Lua client#$r]}" -v y="$lua" 'BEGIN {print x / y}')")
	OVER+=("$(awk -v a="${CPU[jwtgate, token cache off, unique tokens, Lua client#$r]}" -v b="$ENGINE_US" 'BEGIN {print a - b}')")
	BARE_CPU+=("${CPU[bare fasthttp 200, Lua client#$r]}")
done
{
	echo "Server benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(go version | awk '{print $3}'), $ROUNDS rounds."
	printf 'CPU: %s family %s model %s stepping %s (%s).\n' \
		"$(awk -F': ' '/^vendor_id/ {print $2; exit}' /proc/cpuinfo)" "$(awk -F': ' '/^cpu family/ {print $2; exit}' /proc/cpuinfo)" \
		"$(awk -F': ' '/^model[[:space:]]*:/ {print $2; exit}' /proc/cpuinfo)" "$(awk -F': ' '/^stepping/ {print $2; exit}' /proc/cpuinfo)" \
		"$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "Server pinned to CPU $SERVER_CPU, \`wrk -t1 -c$CONNS -d$DURATION\` keep-alive pinned to CPU $CLIENT_CPU, 127.0.0.1."
	echo "\"one token\": a static Authorization header; \"Lua client\": $NTOK distinct tokens sent in turn by bench/server/tokens.lua."
	echo
	echo "| round | scenario | req/s | server CPU µs/req | requests | non-2xx | RSS MiB before → after |"
	echo "|---|---|---:|---:|---:|---:|---|"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "Bare handler req/s, static header (per round, mean of the two bare runs): ${BARE_ALL[*]}; with the Lua client: ${BARE_LUA_ALL[*]}."
	echo "Engine cold verify (BenchmarkVerify/bits=2048/path=cold cpu-ns/op, -cpu 1, median of 5, same core): $ENGINE_US µs."
	echo
	echo "Ratios are taken within each round; median (min–max) over the $ROUNDS rounds."
	echo
	echo "| target | measured | goal |"
	echo "|---|---:|---|"
	echo "| cache off: server CPU/verify − engine cold verify, µs | $(med "${OVER[@]}") | ≤ bare request's CPU/request: $(med "${BARE_CPU[@]}") µs (Lua client) |"
	echo "| cache on, one token: req/s ÷ bare | $(med "${R_CACHED[@]}") | ≥ 0.85 |"
	echo "| cache on, one token: bare CPU/request ÷ jwtgate CPU/request | $(med "${C_CACHED[@]}") | ≥ 0.85 (the req/s ratio of a server with its core to itself) |"
	echo "| unknown-kid flood (one token): req/s ÷ bare | $(med "${R_UNK[@]}") | ≥ 0.8 |"
	echo "| expired flood (one token): req/s ÷ bare | $(med "${R_EXP[@]}") | ≥ 0.8 |"
	echo "| unknown-kid flood (unique kids): req/s ÷ bare (both Lua) | $(med "${R_UNKL[@]}") | ≥ 0.8 |"
	echo "| expired flood (unique tokens): req/s ÷ bare (both Lua) | $(med "${R_EXPL[@]}") | ≥ 0.8 |"
} | tee "$OUT"
