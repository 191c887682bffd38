# Deploying (issue 10): a static jwtgate binary for containers, and the
# files in deploy/, Dockerfile and docker-compose.yml (tested by
# cmd/jwtgate/deploy_test.go: the compose file parses, the commands use
# real flags, the binary is static).
.PHONY: build-static

# build-static: bin/jwtgate without cgo, so that it runs on distroless or
# scratch images (no libc, no dynamic loader). The Dockerfile uses it.
build-static:
	@echo "building a static $(BIN)/jwtgate (CGO_ENABLED=0)"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/jwtgate
