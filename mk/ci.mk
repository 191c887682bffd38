# CI workflows (issue 13): .github/workflows/ci.yml runs `make test` on a
# fresh runner (.ci/run: setup scripts, PostgreSQL included), bench.yml runs
# `make bench-gate` against a pull request's base branch. docs/CI.md says
# how to use them and how to gate a deployment with loadgen.
#
#   make workflow-lint    check the workflow files with actionlint (part of
#                         `make test`); installs the pinned version with
#                         `go install` when it is missing

ACTIONLINT_VERSION ?= v1.7.12
ACTIONLINT         ?= $(shell $(GO) env GOPATH)/bin/actionlint

.PHONY: workflow-lint
workflow-lint:
	@if ! "$(ACTIONLINT)" -version 2>/dev/null | grep -qx '$(ACTIONLINT_VERSION)'; then \
	  echo "installing actionlint $(ACTIONLINT_VERSION)"; \
	  $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION) || \
	    { echo "workflow-lint: cannot install actionlint $(ACTIONLINT_VERSION) (needs the Go module proxy)"; exit 1; }; \
	fi
	"$(ACTIONLINT)" .github/workflows/*.yml

TEST_EXTRA += workflow-lint
