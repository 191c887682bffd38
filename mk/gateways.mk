# Gateways (issue 11): gRPC ext_authz, proxies in front, in-process
# middleware.
#
#   make bench-gateways   BenchmarkGateway: server CPU per request of the
#                         HTTP verify path vs gRPC Check (cached token, same
#                         server process), and in-process middleware vs the
#                         HTTP sidecar hop; the test binary is built once and
#                         run GATEWAY_ROUNDS times so the paths alternate.
#   make test-gateways    builds Caddy from its Go module and runs the
#                         forward_auth test against it (and the nginx test).

GATEWAY_ROUNDS ?= 6
GATEWAY_BENCHTIME ?= 1s

.PHONY: bench-gateways bench-gateways-smoke test-gateways

# Every gateway benchmark once (part of make test, like bench-smoke).
bench-gateways-smoke:
	JWTGATE_BENCH_SMOKE=1 $(GO) test -run '^$$' -bench . -benchtime=1x -timeout 5m ./bench/gateway/

TEST_EXTRA += bench-gateways-smoke

bench-gateways:
	@set -e; bin=$$(mktemp -d)/bench.test; trap 'rm -rf "$$(dirname $$bin)"' EXIT; \
	$(GO) test -c -o "$$bin" ./bench/gateway/; rm -f bench-gateways.txt; \
	for i in $$(seq $(GATEWAY_ROUNDS)); do \
	  echo "round $$i/$(GATEWAY_ROUNDS)" >&2; \
	  (cd bench/gateway && "$$bin" -test.run '^$$' -test.bench '^BenchmarkGateway$$' -test.benchmem -test.benchtime $(GATEWAY_BENCHTIME) -test.count 1) | tee -a bench-gateways.txt | grep '^Benchmark' >&2; \
	done; echo "wrote bench-gateways.txt"

# Caddy is built from its Go module (CADDY_VERSION) in $(BIN)/caddy-build,
# once; the test then runs it with docs/examples/Caddyfile.
CADDY_VERSION ?= v2.11.9
CADDY_BIN     := $(BIN)/caddy

$(CADDY_BIN):
	@mkdir -p $(BIN)/caddy-build
	@cd $(BIN)/caddy-build && \
	printf 'module caddybuild\n\ngo 1.26\n' > go.mod && \
	printf 'package main\n\nimport (\n\tcaddycmd "github.com/caddyserver/caddy/v2/cmd"\n\t_ "github.com/caddyserver/caddy/v2/modules/standard"\n)\n\nfunc main() { caddycmd.Main() }\n' > main.go && \
	echo "building Caddy $(CADDY_VERSION) from its Go module" && \
	$(GO) get github.com/caddyserver/caddy/v2@$(CADDY_VERSION) && $(GO) mod tidy && \
	$(GO) build -o ../caddy .

test-gateways: $(CADDY_BIN)
	JWTGATE_CADDY=$(abspath $(CADDY_BIN)) JWTGATE_REQUIRE_CADDY=1 JWTGATE_REQUIRE_NGINX=1 \
	  $(GO) test -count=1 -v -run '^(TestCaddyForwardAuth|TestNginxAuthRequest)$$' ./internal/proxytest/
