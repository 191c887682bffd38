package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/fsutil"
	"github.com/jwtgate/jwtgate/store/boltstore"
)

// storeOpener opens a key store from its URL. The closer is closed after
// the server has shut down.
type storeOpener func(ctx context.Context, url string, o storeOptions, log *slog.Logger) (engine.KeyStore, io.Closer, error)

// storeOptions are serve flags that concern a store shared by several
// nodes (the embedded store ignores them).
type storeOptions struct {
	// maxStale is --max-stale when given (flag or environment); nil leaves
	// the store's default or the URL's jwtgate_max_stale.
	maxStale *time.Duration
}

// storeOpeners maps a --store URL scheme to its opener. Other files register
// theirs in init (e.g. "postgres", "postgresql").
var storeOpeners = map[string]storeOpener{
	"bolt": openBoltURL,
}

// openBoltURL opens bolt:///path/to/keys.db (or bolt:relative/keys.db).
func openBoltURL(_ context.Context, raw string, _ storeOptions, log *slog.Logger) (engine.KeyStore, io.Closer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, errors.New("bad bolt store URL: " + err.Error())
	}
	path := u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" {
		return nil, nil, errors.New("bolt store URL has no path (bolt:///path/to/keys.db)")
	}
	return openBolt(path, log)
}

// syncDir makes a new directory entry durable (a variable for tests).
var syncDir = fsutil.SyncDir

func openBolt(path string, log *slog.Logger) (engine.KeyStore, io.Closer, error) {
	dir := filepath.Dir(path)
	_, dirErr := os.Stat(dir)
	_, fileErr := os.Stat(path)
	st, err := boltstore.Open(path)
	if err != nil {
		return nil, nil, err
	}
	// A new database (and data directory) is durable only once the
	// directories holding their names are synced.
	var serr error
	if errors.Is(dirErr, os.ErrNotExist) {
		serr = syncDir(filepath.Dir(dir))
	}
	if errors.Is(fileErr, os.ErrNotExist) && serr == nil {
		serr = syncDir(dir)
	}
	if serr != nil {
		st.Close()
		return nil, nil, errors.New("syncing the data directory " + dir + " after creating " + filepath.Base(path) + ": " + serr.Error())
	}
	log.Info("key store open", "store", "bolt", "path", path)
	return st, st, nil
}

// openStore opens the store named by storeURL: empty means the embedded
// bbolt store <dataDir>/keys.db; otherwise the opener of the URL's scheme.
func openStore(ctx context.Context, storeURL, dataDir string, o storeOptions, log *slog.Logger) (engine.KeyStore, io.Closer, error) {
	if storeURL == "" {
		return openBolt(filepath.Join(dataDir, "keys.db"), log)
	}
	scheme, _, ok := strings.Cut(storeURL, ":")
	if !ok || scheme == "" {
		return nil, nil, errors.New("--store must be a URL such as postgres://...; supported schemes: " + supportedSchemes())
	}
	open, ok := storeOpeners[strings.ToLower(scheme)]
	if !ok {
		return nil, nil, errors.New("--store scheme " + strings.ToLower(scheme) + " is not supported; supported schemes: " + supportedSchemes() + " (or leave --store empty for the embedded store in --data-dir)")
	}
	return open(ctx, storeURL, o, log)
}

func supportedSchemes() string {
	names := make([]string, 0, len(storeOpeners))
	for n := range storeOpeners {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
