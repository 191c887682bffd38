package boltstore_test

import (
	"path/filepath"
	"testing"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/store/boltstore"
	"github.com/jwtgate/jwtgate/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.KeyStore {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

func TestRegistry(t *testing.T) {
	storetest.RunRegistry(t, func(t *testing.T) engine.KeyStore {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestAdminConformance(t *testing.T) {
	storetest.RunAdmin(t, func(t *testing.T) storetest.AdminStore {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestJWKSSourceConformance(t *testing.T) {
	storetest.RunJWKS(t, func(t *testing.T) admin.JWKSSourceStore {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
