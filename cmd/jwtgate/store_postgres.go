package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/store/pgstore"
)

// The PostgreSQL key store: --store postgres://user@host/db (or
// postgresql://...). One registry shared by many nodes; see the README's
// "Running several nodes".
func init() {
	storeOpeners["postgres"] = openPostgres
	storeOpeners["postgresql"] = openPostgres
}

func openPostgres(ctx context.Context, url string, o storeOptions, log *slog.Logger) (engine.KeyStore, io.Closer, error) {
	opts := []pgstore.Option{pgstore.WithLogger(log)}
	if o.maxStale != nil {
		opts = append(opts, pgstore.WithMaxStale(*o.maxStale))
	}
	st, err := pgstore.Open(ctx, url, opts...)
	if err != nil {
		return nil, nil, err
	}
	// Never log the URL: it may carry a password.
	log.Info("key store open", "store", "postgres", "schema_version", pgstore.SchemaVersion, "listening", st.Connected())
	return st, st, nil
}
