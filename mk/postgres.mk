# PostgreSQL store: tests run in `make test` (race target, ./...); these are
# the extra targets. The tests start a throwaway server from the PostgreSQL
# binaries, or use JWTGATE_TEST_PG_DSN.
.PHONY: test-postgres bench-postgres bench-postgres-propagation bench-postgres-verify

test-postgres:
	JWTGATE_REQUIRE_PG=1 $(GO) test -race -count=1 ./internal/pgtest/ ./store/pgstore/ ./bench/postgres/

# Propagation delay between two nodes (1,000 changes) and verify throughput
# with the PostgreSQL store vs the memory store.
bench-postgres: bench-postgres-propagation bench-postgres-verify

bench-postgres-propagation:
	JWTGATE_REQUIRE_PG=1 $(GO) test -run '^TestPropagationDelay$$' -count=1 -v ./bench/postgres/ -args -changes 1000 | tee bench-postgres-propagation.txt

bench-postgres-verify:
	JWTGATE_REQUIRE_PG=1 $(GO) test -run '^$$' -bench 'BenchmarkVerifyHot' -benchmem -count 6 ./bench/postgres/ | tee bench-postgres-verify.txt
