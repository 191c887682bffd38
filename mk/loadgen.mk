# Load generator (issue 4): build, demo run, capacity search, several
# generators at once (issue 13), benchmarks.
# The demo starts a throw-away jwtgate on loopback ports, mints, attacks
# briefly and tears the server down again.

# LOADGEN_DIR: where the demo's server data, targets and results go. Empty
# (the default): a new directory from mktemp, named at the end of the run.
# A directory you give is used as it is (never emptied first).
LOADGEN_DIR      ?=
LOADGEN_PORT     ?= 18080
LOADGEN_ADMIN    ?= 18081
LOADGEN_COUNT    ?= 20000
LOADGEN_UNIQUE   ?= 2000
LOADGEN_MIX      ?= valid=90,expired=2,unknown_kid=2,invalid_signature=1,audience_mismatch=1,unsupported_algorithm=1,ttl_exceeded=1,key_inactive=1,malformed=1
LOADGEN_RATE     ?= 1000/s
LOADGEN_DURATION ?= 10s
LOADGEN_SLO      ?= p99=10ms

LOADGEN_SHARDS   ?= 3

.PHONY: loadgen loadtest-demo loadtest-capacity loadtest-sharded loadgen-bench loadgen-docs

loadgen:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/loadgen ./cmd/jwtgate

# _loadgen_run starts jwtgate, waits for it, mints, runs $(1), stops jwtgate.
# If jwtgate does not come up (a port taken, a bad flag), its log is shown
# and the run stops.
define _loadgen_run
	@set -e; d='$(LOADGEN_DIR)'; if [ -z "$$d" ]; then d=$$(mktemp -d "$${TMPDIR:-/tmp}/jwtgate-loadgen.XXXXXX"); fi; \
	mkdir -p "$$d/data"; echo "loadgen demo: server data, targets and results in $$d"; \
	$(BIN)/jwtgate serve --addr 127.0.0.1:$(LOADGEN_PORT) --admin-addr 127.0.0.1:$(LOADGEN_ADMIN) \
	  --data-dir $$d/data >$$d/jwtgate.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null || true; echo "loadgen demo: files in $$d"' EXIT INT TERM; \
	up=; for i in $$(seq 100); do \
	  if ! kill -0 $$pid 2>/dev/null; then break; fi; \
	  if curl -fs http://127.0.0.1:$(LOADGEN_PORT)/readyz >/dev/null 2>&1; then up=1; break; fi; sleep 0.1; done; \
	if [ -z "$$up" ]; then echo "jwtgate did not start on 127.0.0.1:$(LOADGEN_PORT)/$(LOADGEN_ADMIN); its log ($$d/jwtgate.log):" >&2; \
	  cat $$d/jwtgate.log >&2; exit 1; fi; \
	$(BIN)/loadgen mint --admin-url http://127.0.0.1:$(LOADGEN_ADMIN) --admin-token-file $$d/data/admin-token \
	  --url http://127.0.0.1:$(LOADGEN_PORT)/v1/verify --project demo --count $(LOADGEN_COUNT) \
	  --unique $(LOADGEN_UNIQUE) --mix '$(LOADGEN_MIX)' -o $$d/targets.jsonl; \
	$(1)
endef

# loadtest-demo: a short attack; report on stdout, results/summary/plot in $(LOADGEN_DIR)/out.
loadtest-demo: loadgen
	$(call _loadgen_run,$(BIN)/loadgen attack -t $$d/targets.jsonl --rate $(LOADGEN_RATE) --duration $(LOADGEN_DURATION) -o $$d/out)

# loadtest-capacity: the SLO search; table on stdout, chart in $(LOADGEN_DIR)/capacity.
loadtest-capacity: loadgen
	$(call _loadgen_run,$(BIN)/loadgen capacity -t $$d/targets.jsonl --slo $(LOADGEN_SLO) --start 500 --step-duration 3s --max-steps 8 -o $$d/capacity)

# loadtest-sharded: LOADGEN_SHARDS generator processes at once, each with
# --shard i/n (its share of the targets at LOADGEN_RATE/n), then `loadgen
# report` merges their outputs and applies LOADGEN_SLO; results in
# $(LOADGEN_DIR)/gen*/ and $(LOADGEN_DIR)/merged.
loadtest-sharded: loadgen
	$(call _loadgen_run,pids=; for i in $$(seq $(LOADGEN_SHARDS)); do \
	  $(BIN)/loadgen attack -t $$d/targets.jsonl --rate $(LOADGEN_RATE) --duration $(LOADGEN_DURATION) \
	    --shard $$i/$(LOADGEN_SHARDS) -o $$d/gen$$i > $$d/gen$$i.txt 2>&1 & pids="$$pids $$!"; done; \
	  st=0; for p in $$pids; do wait $$p || st=1; done; \
	  $(BIN)/loadgen report --slo $(LOADGEN_SLO) -o $$d/merged $$d/gen*/ || st=1; exit $$st)

# loadgen-bench: minting efficiency (BenchmarkMint vs BenchmarkSignRS256) and the check's cost.
loadgen-bench:
	$(GO) test -run '^$$' -bench 'SignRS256|Mint|Check' -benchmem -count 6 ./loadgen | tee bench-loadgen.txt

# loadgen-docs: refresh docs/img/loadgen-* from a demo run (needs chromium for the PNG).
loadgen-docs: loadgen
	$(call _loadgen_run,$(BIN)/loadgen attack -t $$d/targets.jsonl --rate $(LOADGEN_RATE) --duration $(LOADGEN_DURATION) -o $$d/out | tee $$d/attack.txt; \
	  $(BIN)/loadgen capacity -t $$d/targets.jsonl --slo $(LOADGEN_SLO) --start 500 --step-duration 3s --max-steps 8 -o $$d/capacity | tee $$d/capacity.txt; \
	  cp $$d/capacity/capacity.svg docs/img/loadgen-capacity.svg; \
	  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=5000 \
	    --screenshot=docs/img/loadgen-plot.png --window-size=1200,700 file://$$d/out/plot.html)
