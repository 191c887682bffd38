#!/bin/sh
# Instructions per RSA verification, counted by valgrind (callgrind), which
# the load on a shared machine does not change. Valgrind's CPU has no ADX, so
# this compares the paths of hosts without BMI2/ADX: crypto/rsa's MULQ
# assembly, ours (impl=noadx, MULQ assembly) and ours in portable Go. Each
# figure is (instructions of N2 runs - instructions of N1 runs) / (N2 - N1),
# which cancels the set-up.
#
#   bench/rsa-instructions.sh [bits...]        (make bench-rsa-ir)
set -eu
command -v valgrind >/dev/null || { echo "rsa-instructions: valgrind not found; install it (apt-get install valgrind)" >&2; exit 1; }
bits=${*:-2048 3072 4096}
N1=20 N2=120
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/rv.test" ./engine/internal/rsaverify
grep -m1 -E '^vendor_id' /proc/cpuinfo || true
grep -m1 -E '^cpu family' /proc/cpuinfo || true
grep -m1 -E '^model[[:space:]]' /proc/cpuinfo || true
grep -m1 -E '^stepping' /proc/cpuinfo || true
count() { # benchmark-regexp iterations
	(cd engine/internal/rsaverify && GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind \
		--callgrind-out-file=/dev/null "$tmp/rv.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2x" 2>&1) |
		sed -n 's/.*Collected : //p'
}
printf '| bits | impl | instructions/verify | ÷ crypto/rsa |\n|---|---|---|---|\n'
for b in $bits; do
	std=
	for impl in stdlib noadx portable; do
		re="^BenchmarkVerify\$/^bits=$b\$/^impl=$impl\$"
		a=$(count "$re" $N1); z=$(count "$re" $N2)
		per=$(( (z - a) / (N2 - N1) ))
		[ -z "$std" ] && std=$per
		printf '| %s | %s | %s | %s |\n' "$b" "$impl" "$per" "$(awk "BEGIN{printf \"%.2f\", $per/$std}")"
	done
done
