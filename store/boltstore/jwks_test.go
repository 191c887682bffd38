package boltstore_test

import (
	"path/filepath"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/jwkstest"
	"github.com/jwtgate/jwtgate/store/boltstore"
)

func TestJWKSImport(t *testing.T) {
	jwkstest.Run(t, func(t *testing.T) engine.KeyStore {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
