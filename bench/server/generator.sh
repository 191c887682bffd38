#!/usr/bin/env bash
# Generator CPU per request (issue 12 item 5): `loadgen attack` at a fixed
# rate and wrk at full speed against the same bare fasthttp handler, in
# alternating rounds of the same run. The handler is pinned to CPU 0, the
# client (wrk or loadgen) to CPU 1; a client's CPU is its user + system time
# from the shell's child-process accounting, divided by the requests it
# completed. All traffic goes to 127.0.0.1 and each run is bounded by
# $DURATION.
#
#   bench/server/generator.sh                (or: make bench-generator)
#   ROUNDS=3 RATE=20000 DURATION=5s bench/server/generator.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-20000}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
PORT=${PORT:-18590}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
for t in go wrk taskset curl; do
	command -v "$t" >/dev/null || { echo "bench-generator: $t is required (apt-get install wrk util-linux curl)" >&2; exit 1; }
done
WORK=$(mktemp -d)
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
go build -o "$WORK/bare" ./bench/server/bare
go build -o "$WORK/loadgen" ./cmd/loadgen
go build -o "$WORK/gentokens" ./bench/server/gentokens
"$WORK/gentokens" -kind valid -n 2000 >"$WORK/tokens.txt"
awk -v u="http://127.0.0.1:$PORT/v1/verify" '{printf "{\"method\":\"GET\",\"url\":\"%s\",\"header\":{\"Authorization\":[\"Bearer %s\"],\"X-Loadgen-Expect\":[\"valid\"]}}\n", u, $0}' \
	"$WORK/tokens.txt" >"$WORK/targets.jsonl"
taskset -c "$SERVER_CPU" "$WORK/bare" -addr "127.0.0.1:$PORT" &
SPID=$!
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break; sleep 0.1; done

# children_cpu VAR: sets VAR to the user+system seconds of this shell's
# finished children (`times` must run in this shell, not a subshell).
children_cpu() {
	times >"$WORK/times"
	printf -v "$1" '%s' "$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$WORK/times")"
}
TOKEN=$(head -n1 "$WORK/tokens.txt")
declare -a WRK_US LG_US LG_OWN WRK_RPS LG_RPS
run_wrk() {
	local c0 c1 out reqs
	children_cpu c0
	out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/verify")
	children_cpu c1
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	WRK_RPS+=("$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')")
	WRK_US+=("$(awk -v a="$c0" -v b="$c1" -v n="$reqs" 'BEGIN {printf "%.1f", (b - a) * 1e6 / n}')")
}
run_loadgen() {
	local c0 c1 out reqs
	children_cpu c0
	out=$(taskset -c "$CLIENT_CPU" "$WORK/loadgen" attack -t "$WORK/targets.jsonl" --rate "$RATE/s" \
		--duration "$DURATION" --connections "$CONNS" 2>/dev/null) || { echo "$out" >&2; exit 1; }
	children_cpu c1
	reqs=$(echo "$out" | awk '/^requests/ {print $2+0}')
	LG_RPS+=("$(echo "$out" | awk '/^requests/ {printf "%.0f", $3}')")
	LG_US+=("$(awk -v a="$c0" -v b="$c1" -v n="$reqs" 'BEGIN {printf "%.1f", (b - a) * 1e6 / n}')")
	# the attack phase alone, as loadgen reports it (getrusage around the attack)
	LG_OWN+=("$(echo "$out" | awk -v n="$reqs" '/^generator/ {
		v = $3; m = 1
		if (v ~ /ms$/) { m = 1e-3 } else if (v ~ /µs$/) { m = 1e-6 }
		gsub(/[^0-9.]/, "", v); printf "%.1f", v * m * 1e6 / n }')")
}
for i in $(seq "$ROUNDS"); do
	echo "round $i/$ROUNDS" >&2
	if [ $((i % 2)) = 1 ]; then run_wrk; run_loadgen; else run_loadgen; run_wrk; fi
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "Generator CPU per request, $(date -u +%Y-%m-%d), $ROUNDS alternating rounds of $DURATION, bare fasthttp handler on CPU $SERVER_CPU, client on CPU $CLIENT_CPU, $CONNS connections."
grep -m1 '^vendor_id' /proc/cpuinfo | sed 's/.*: /CPU: /' | tr -d '\n'
for k in 'cpu family' 'model' 'stepping'; do grep -m1 "^$k[[:space:]]*:" /proc/cpuinfo | sed "s/.*: / $k /" | tr -d '\n'; done
echo
echo
echo "| round | wrk req/s | wrk CPU µs/req | loadgen req/s (asked $RATE/s) | loadgen CPU µs/req, attack phase | loadgen CPU µs/req, whole process |"
echo "|---|---:|---:|---:|---:|---:|"
for i in $(seq 0 $((ROUNDS - 1))); do
	echo "| $((i + 1)) | ${WRK_RPS[$i]} | ${WRK_US[$i]} | ${LG_RPS[$i]} | ${LG_OWN[$i]} | ${LG_US[$i]} |"
done
echo "| median | $(median "${WRK_RPS[@]}") | $(median "${WRK_US[@]}") | $(median "${LG_RPS[@]}") | $(median "${LG_OWN[@]}") | $(median "${LG_US[@]}") |"
