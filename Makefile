# jwtgate — build, run and test. `make test` is what CI runs.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin
FUZZTIME  ?= 20s
DATA_DIR  ?= ./jwtgate-data

.PHONY: all build run test fmt-check vet deps-check race fuzz-short fuzz bench bench-engine lint clean

# Each area adds its own targets in mk/<area>.mk, and may append targets that
# `make test` must also run to TEST_EXTRA.
TEST_EXTRA :=
-include mk/*.mk

all: build

# The first build downloads the modules and compiles everything (about 90 s
# on a cold cache); say so rather than sit silent.
build:
	@echo "building $(BIN)/jwtgate and $(BIN)/loadgen (the first build downloads modules and compiles for about 90 s; later builds take seconds)..."
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...
	@echo "built $(BIN)/jwtgate $(VERSION)"

run: build
	@echo "starting jwtgate: verify on :8080, admin on 127.0.0.1:8081, data in $(DATA_DIR) (Ctrl-C stops it)"
	$(BIN)/jwtgate serve --data-dir $(DATA_DIR)

# test: formatting, vet, the layout rule, race-enabled tests, a short fuzz.
test: fmt-check vet deps-check race fuzz-short $(TEST_EXTRA)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# engine/ may import only the standard library and golang-lru.
deps-check:
	@bad=$$($(GO) list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./engine | grep -v -e '^github.com/jwtgate/jwtgate/engine' -e '^github.com/hashicorp/golang-lru/v2' || true); \
	if [ -n "$$bad" ]; then echo "engine/ imports outside its allowed set:"; echo "$$bad"; exit 1; fi

race:
	$(GO) test -race -count=1 -timeout 8m ./...

fuzz-short:
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./engine

fuzz:
	$(MAKE) fuzz-short FUZZTIME=5m

# bench: the full suite (mk/bench.mk adds it); bench-engine: the engine's
# own benchmarks with their baselines.
bench:

bench-engine:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./engine | tee bench-engine.txt

lint: fmt-check vet deps-check

clean:
	rm -rf $(BIN)
