# Benchmark suite (issue 5): bench/ and its tooling.
#
#   make bench                      run the suites (-count 6), write
#                                   bench-results/<date>-<commit>.txt (benchstat format)
#   make bench-compare BASE=<ref>   run the same suites on BASE (a temporary git
#                                   worktree) and here, interleaved, and print
#                                   `benchstat base.txt head.txt`
#   make bench-gate BASE=<ref>      the same, decided: exit 1 on a regression,
#                                   bench-results/compare.md for a PR comment
#   make bench-smoke                every benchmark once (-benchtime=1x, small
#                                   token pools); part of `make test`
#   make bench-doc                  rerun the suites and openssl speed and rewrite
#                                   the tables and charts in docs/BENCHMARKS.md
#                                   (RESULTS=<file> reuses a results file instead);
#                                   the raw results it used are kept in bench/results/
#   make bench-rsa                  RSA verify: ours / crypto/rsa / portable path /
#                                   `openssl speed rsa2048` in RSA_ROUNDS alternating
#                                   rounds; prints the CPU identity, medians and the
#                                   spread of per-round ratios, and rewrites the
#                                   bench:rsa block of docs/BENCHMARKS.md
#   make bench-rsa-arm64            the same for GOARCH=arm64 under qemu-aarch64-static
#                                   (emulated: evidence for the arm64 rule, not a
#                                   native figure); rewrites the bench:rsa-arm64 block
#   make bench-rsa-ir               instructions per verification (valgrind; load-
#                                   independent) of crypto/rsa, the no-ADX and the
#                                   portable paths
#
# Knobs: BENCH (regexp, default .), BENCH_COUNT (6), BENCH_TIME (1s),
# BENCH_PKG (./bench/), BENCH_OPENSSL (1: run `openssl speed rsa2048` after
# each round, as BenchmarkPeers/lib=openssl; bench-doc sets it).

BENCH        ?= .
BENCH_COUNT  ?= 6
BENCH_TIME   ?= 1s
BENCH_PKG    ?= ./bench/
BENCH_DIR    ?= bench-results
GOBIN_DIR    := $(shell $(GO) env GOPATH)/bin
BENCHSTAT    ?= $(shell command -v benchstat 2>/dev/null || echo $(GOBIN_DIR)/benchstat)
BENCH_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo nocommit)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
BENCH_OUT    ?= $(BENCH_DIR)/$(shell date -u +%Y-%m-%d)-$(BENCH_COMMIT).txt

.PHONY: bench-suite bench-compare bench-smoke bench-doc bench-rsa bench-rsa-arm64 bench-rsa-ir benchstat-install

RSA_ROUNDS    ?= 8
RSA_BENCHTIME ?= 1s
RSA_OPENSSL_S ?= 2
RSA_OUT       ?= $(BENCH_DIR)/rsa-$(shell date -u +%Y-%m-%d)-$(BENCH_COMMIT).txt

bench-rsa:
	$(GO) run ./bench/cmd/benchrsa --rounds $(RSA_ROUNDS) --benchtime $(RSA_BENCHTIME) \
	  --openssl-seconds $(RSA_OPENSSL_S) --out $(RSA_OUT) --doc docs/BENCHMARKS.md
	@mkdir -p bench/results && cp $(RSA_OUT) bench/results/rsa.txt

bench-rsa-arm64:
	@command -v qemu-aarch64-static >/dev/null || { echo "bench-rsa-arm64 needs qemu-aarch64-static: apt-get install qemu-user-static" >&2; exit 1; }
	$(GO) run ./bench/cmd/benchrsa --goarch arm64 --exec qemu-aarch64-static --impl ours,stdlib \
	  --rounds $(RSA_ROUNDS) --benchtime 300x --openssl-seconds 0 \
	  --out $(BENCH_DIR)/rsa-arm64.txt --doc docs/BENCHMARKS.md --block rsa-arm64
	@mkdir -p bench/results && cp $(BENCH_DIR)/rsa-arm64.txt bench/results/rsa-arm64.txt

bench-rsa-ir:
	bench/rsa-instructions.sh

# `bench` is declared in the Makefile; this adds the suite to it.
bench: bench-suite

# The test binary is built once and run BENCH_COUNT times with -count 1, so
# the repetitions of all benchmarks are interleaved: a burst of load from
# elsewhere on the machine spreads over every benchmark instead of skewing
# one, and ratios between benchmarks stay comparable.
bench-suite:
	@mkdir -p $(BENCH_DIR)
	@set -e; bin=$$(mktemp -d)/bench.test; trap 'rm -rf "$$(dirname $$bin)"' EXIT; \
	$(GO) test -c -o "$$bin" $(BENCH_PKG); \
	{ echo "commit: $(BENCH_COMMIT)"; echo "date: $$(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "nproc: $$(nproc)"; } > $(BENCH_OUT).tmp; \
	for i in $$(seq $(BENCH_COUNT)); do \
	  echo "run $$i/$(BENCH_COUNT)" >&2; \
	  (cd $(BENCH_PKG) && "$$bin" -test.run '^$$' -test.bench '$(BENCH)' -test.benchmem -test.benchtime $(BENCH_TIME) -test.count 1 -test.timeout 60m) > "$$bin.out" \
	    || { cat "$$bin.out"; echo "benchmarks failed; partial results in $(BENCH_OUT).tmp" >&2; exit 1; }; \
	  cat "$$bin.out" | tee -a $(BENCH_OUT).tmp | grep '^Benchmark' >&2 || true; \
	  if [ "$(BENCH_OPENSSL)" = 1 ]; then \
	    openssl speed -seconds $(RSA_OPENSSL_S) rsa2048 2>/dev/null | tee "$$bin.ossl" \
	      | awk '/^rsa +2048 +bits/ && $$7 > 0 { printf "BenchmarkPeers/lib=openssl/bits=2048 1 %.0f ns/op\n", 1e9/$$7 }' | tee -a $(BENCH_OUT).tmp >&2; \
	    cp "$$bin.ossl" $(BENCH_DIR)/openssl-rsa2048.txt; \
	  fi; \
	done; \
	mv $(BENCH_OUT).tmp $(BENCH_OUT); echo "wrote $(BENCH_OUT)"

benchstat-install:
	@test -x "$(BENCHSTAT)" || { echo "installing benchstat"; $(GO) install golang.org/x/perf/cmd/benchstat@latest; }

# The base runs head's bench/ (copied over the base's) so that both sides run
# the same benchmarks against their own engine and server; set
# BENCH_SUITE=base to run the base's own bench/ instead. The two test
# binaries are built first and then run alternately, one -count at a time,
# so that machine noise falls on both sides alike (bench/compare.sh).
BENCH_SUITE ?= head
export BENCH_SUITE
bench-compare: benchstat-install
	@test -n "$(BASE)" || { echo "usage: make bench-compare BASE=<git ref> [BENCH=<regexp>] [BENCH_COUNT=6]"; exit 2; }
	@GO='$(GO)' BENCH='$(value BENCH)' BENCH_COUNT='$(BENCH_COUNT)' BENCH_TIME='$(BENCH_TIME)' BENCH_PKG='$(BENCH_PKG)' \
	  HEAD_TAGS='$(HEAD_TAGS)' bench/compare.sh '$(BASE)' $(BENCH_DIR)/compare
	cp $(BENCH_DIR)/compare/base.txt $(BENCH_DIR)/compare-base.txt; cp $(BENCH_DIR)/compare/head.txt $(BENCH_DIR)/compare-head.txt
	cd $(BENCH_DIR) && "$(BENCHSTAT)" -ignore commit compare-base.txt compare-head.txt

# bench-gate: the CI gate (issue 13). The same interleaved comparison, then
# bench/cmd/benchgate decides: exit 1 when a benchmark is slower by more
# than THRESHOLD (time/op, significant by benchstat's Mann-Whitney U test)
# or allocates more per op at all. Benchmarks whose spread is wider than
# THRESHOLD are rerun (RERUNS times at most, BENCH_COUNT rounds each) and,
# if still too noisy, reported as inconclusive (exit 0; GATE_FLAGS=--strict
# fails on them too). Writes $(BENCH_DIR)/compare.md (a pull-request
# comment, regressions first) beside base.txt and head.txt.
#
#   make bench-gate BASE=origin/main
#   make bench-gate BASE=HEAD HEAD_TAGS=jwtgate_inject_cold   # must fail: +10% on the cold path
#
# Knobs: GATE_BENCH, the default subset (the 2048-bit verify paths, serial
# and parallel: about 5-10 minutes on 2 busy cores); BENCH=<regexp> on the
# command line replaces it (BENCH=. runs everything, ~1h; a $ in it is
# passed as is, e.g. BENCH='^BenchmarkReject$'). THRESHOLD (5%), RERUNS
# (2), BENCH_COUNT (6), HEAD_TAGS (build tags of the head binary only).
GATE_BENCH ?= ^BenchmarkVerify$$/^bits=2048$$
THRESHOLD  ?= 5%
RERUNS     ?= 2
.PHONY: bench-gate
bench-gate:
	@test -n "$(BASE)" || { echo "usage: make bench-gate BASE=<git ref> [THRESHOLD=5%] [BENCH=<regexp>] [RERUNS=2]"; exit 2; }
	@GO='$(GO)' BENCH='$(if $(filter command line,$(origin BENCH)),$(value BENCH),$(GATE_BENCH))' BENCH_COUNT='$(BENCH_COUNT)' \
	  BENCH_TIME='$(BENCH_TIME)' BENCH_PKG='$(BENCH_PKG)' HEAD_TAGS='$(HEAD_TAGS)' GATE=1 THRESHOLD='$(THRESHOLD)' \
	  RERUNS='$(RERUNS)' GATE_FLAGS='$(GATE_FLAGS)' bench/compare.sh '$(BASE)' $(BENCH_DIR)
	@echo "wrote $(BENCH_DIR)/compare.md"

# Every benchmark once, with small token pools (JWTGATE_BENCH_SMOKE=1; see
# bench/bench.go): a broken benchmark fails `make test`.
bench-smoke:
	JWTGATE_BENCH_SMOKE=1 $(GO) test -run '^$$' -bench . -benchtime=1x -timeout 5m $(BENCH_PKG)

TEST_EXTRA += bench-smoke

# RESULTS=<file> reuses results instead of rerunning the suites.
bench-doc:
	@set -e; res="$(RESULTS)"; \
	if [ -z "$$res" ]; then $(MAKE) --no-print-directory bench-suite BENCH_OUT=$(BENCH_OUT) BENCH_OPENSSL=1; res=$(BENCH_OUT); fi; \
	mkdir -p $(BENCH_DIR); \
	$(GO) run ./bench/cmd/benchdoc --results "$$res" --openssl $(BENCH_DIR)/openssl-rsa2048.txt --doc docs/BENCHMARKS.md --img docs/img; \
	mkdir -p bench/results; \
	if [ "$$res" != bench/results/latest.txt ]; then cp "$$res" bench/results/latest.txt; fi; \
	if [ -s $(BENCH_DIR)/openssl-rsa2048.txt ]; then cp $(BENCH_DIR)/openssl-rsa2048.txt bench/results/openssl-rsa2048.txt; fi; \
	echo "rewrote docs/BENCHMARKS.md and docs/img/bench-*.svg; raw data in bench/results/ (commit it with them)"
