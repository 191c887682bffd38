package pgstore_test

import (
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/jwkstest"
	"github.com/jwtgate/jwtgate/internal/pgtest"
)

// TestJWKSImport runs the JWKS import tests over a real server on the
// PostgreSQL store.
func TestJWKSImport(t *testing.T) {
	jwkstest.Run(t, func(t *testing.T) engine.KeyStore { return open(t, pgtest.Start(t)) })
}

// TestJWKSImportTwoNodes: two nodes on one database; one fetches at a
// time, the other verifies what it imported.
func TestJWKSImportTwoNodes(t *testing.T) {
	dsn := pgtest.Start(t)
	jwkstest.TwoNodes(t, open(t, dsn), open(t, dsn))
}
