# Server (issue 3): `make run` needs nothing beyond the main Makefile's build.
# bench-server measures the verify listener with wrk (installed with apt-get
# when missing), server pinned to one core, wrk on the other.
.PHONY: bench-server

BENCH_SERVER_DURATION ?= 10s

bench-server: build
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing wrk (Debian package)"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi; }
	DURATION=$(BENCH_SERVER_DURATION) bench/server/run.sh

# bench-generator: loadgen attack at 20k req/s and wrk, alternating, against
# the bare handler; CPU per request of each client (issue 12 item 5).
.PHONY: bench-generator
bench-generator:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing wrk (Debian package)"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi; }
	bench/server/generator.sh
