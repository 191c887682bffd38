package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jwtgate/jwtgate/admin"
	bolt "go.etcd.io/bbolt"
)

// bucketJWKS holds the projects' JWKS sources:
//
//	jwks_sources/<project> -> JSON admin.JWKSSource
//
// Created on first use: older builds ignore it.
var bucketJWKS = []byte("jwks_sources")

var _ admin.JWKSSourceStore = (*Store)(nil)

// GetJWKSSource implements admin.JWKSSourceStore.
func (s *Store) GetJWKSSource(_ context.Context, project string) (*admin.JWKSSource, error) {
	var src *admin.JWKSSource
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		src, err = getSourceTx(tx, project)
		return err
	})
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, admin.ErrSourceNotFound
	}
	return src, nil
}

func getSourceTx(tx *bolt.Tx, project string) (*admin.JWKSSource, error) {
	b := tx.Bucket(bucketJWKS)
	if b == nil {
		return nil, nil
	}
	raw := b.Get([]byte(project))
	if raw == nil {
		return nil, nil
	}
	var src admin.JWKSSource
	if err := json.Unmarshal(raw, &src); err != nil {
		return nil, fmt.Errorf("boltstore: JWKS source %q: %w", project, err)
	}
	return &src, nil
}

// ListJWKSSources implements admin.JWKSSourceStore.
func (s *Store) ListJWKSSources(_ context.Context) ([]*admin.JWKSSource, error) {
	var out []*admin.JWKSSource
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJWKS)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var src admin.JWKSSource
			if err := json.Unmarshal(v, &src); err != nil {
				return fmt.Errorf("boltstore: JWKS source %q: %w", k, err)
			}
			out = append(out, &src)
			return nil
		})
	})
	return out, err
}

// UpdateJWKSSource implements admin.JWKSSourceStore in one read-write
// transaction.
func (s *Store) UpdateJWKSSource(ctx context.Context, project string, fn func(*admin.JWKSSource) (*admin.JWKSSource, error)) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		cur, err := getSourceTx(tx, project)
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil || next == nil {
			return err
		}
		raw, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("boltstore: encode JWKS source: %w", err)
		}
		b, err := tx.CreateBucketIfNotExists(bucketJWKS)
		if err != nil {
			return err
		}
		return b.Put([]byte(project), raw)
	})
}

// DeleteJWKSSource implements admin.JWKSSourceStore.
func (s *Store) DeleteJWKSSource(ctx context.Context, project string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJWKS)
		if b == nil || b.Get([]byte(project)) == nil {
			return admin.ErrSourceNotFound
		}
		return b.Delete([]byte(project))
	})
}
