package storetest_test

import (
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/store/storetest"
)

// The reference implementation passes the suite.
func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.KeyStore { return engine.NewMemoryStore() })
}
