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

# Six separate runs, each measuring memory then postgres back to back, so
# that the machine's background load hits both alike (-count 6 would run
# the six memory rounds first).
bench-postgres-verify:
	$(GO) test -c -o $(BIN)/bench-postgres.test ./bench/postgres/
	rm -f bench-postgres-verify.txt
	for i in 1 2 3 4 5 6; do \
		JWTGATE_REQUIRE_PG=1 $(BIN)/bench-postgres.test -test.run '^$$' -test.bench 'BenchmarkVerifyHot' -test.benchmem -test.count 1 | tee -a bench-postgres-verify.txt || exit 1; \
	done
