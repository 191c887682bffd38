# nginx for the proxy tests (internal/proxytest runs nginx auth_request in
# front of a real jwtgate with the configuration docs/examples/ shows).
# Sourced by .ci/run as root. With JWTGATE_REQUIRE_NGINX=1, "no nginx"
# fails those tests instead of skipping them.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	echo "nginx.sh: installing nginx"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	# The package's post-install starts a server on :80; the tests start
	# their own, so keep it from starting.
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	apt-get install -y --no-install-recommends nginx-light || apt-get install -y --no-install-recommends nginx
	rm -f /usr/sbin/policy-rc.d
fi
export JWTGATE_REQUIRE_NGINX=1
