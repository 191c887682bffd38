package pgstore

import "github.com/jwtgate/jwtgate/server"

// The server's optional store interfaces, checked at compile time.
var (
	_ server.InvalidationSource = (*Store)(nil)
	_ server.HealthReporter     = (*Store)(nil)
	_ server.MetricsWriter      = (*Store)(nil)
)
