# PostgreSQL server binaries for the PostgreSQL store tests (internal/pgtest
# starts a throwaway server from them). Sourced by .ci/run as root.
# With JWTGATE_REQUIRE_PG=1, "no PostgreSQL" fails those tests instead of
# skipping them.
pg_bins_present() {
	command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
	[ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ] && return 0
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && [ -x "$d/postgres" ] && return 0
	done
	return 1
}
if [ -z "${JWTGATE_TEST_PG_DSN:-}" ] && ! pg_bins_present; then
	echo "postgres.sh: installing PostgreSQL server binaries"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	# The package's post-install creates and starts a cluster; the tests do
	# not use it (they start their own), so keep it from starting.
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	apt-get install -y --no-install-recommends postgresql
	rm -f /usr/sbin/policy-rc.d
fi
export JWTGATE_REQUIRE_PG=1
