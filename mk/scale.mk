# Registry scale benchmark (issue 15): bench/scale. Heavy (a million keys
# bulk-loaded into bbolt and a throwaway PostgreSQL, tens of thousands of
# tokens minted), so not part of `make test`; TestScaleSmall runs the same
# harness at 20,000 keys there.
#
#   make bench-scale                       1,000,000 keys, hot sets 10 to 1M
#   make bench-scale SCALE_KEYS=200000 SCALE_HOT=10,1000,100000
#
# Writes the tables to bench-results/scale.md and the log to bench-results/scale.txt.

SCALE_KEYS   ?= 1000000
SCALE_HOT    ?= 10,1000,10000,100000,1000000
SCALE_TOKENS ?= 600
SCALE_ROUNDS ?= 10
SCALE_STORES ?= bolt,postgres

.PHONY: bench-scale

bench-scale:
	@mkdir -p bench-results
	JWTGATE_REQUIRE_PG=1 $(GO) test -run '^TestScale$$' -count=1 -v -timeout 90m ./bench/scale/ \
		-args -scale.keys $(SCALE_KEYS) -scale.hot $(SCALE_HOT) -scale.tokens $(SCALE_TOKENS) \
		-scale.rounds $(SCALE_ROUNDS) -scale.stores $(SCALE_STORES) -scale.out $(CURDIR)/bench-results/scale.md \
		| tee bench-results/scale.txt
