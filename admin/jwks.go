package admin

import (
	"context"
	"errors"
	"time"
)

// ErrSourceNotFound is returned for a project without a JWKS source.
var ErrSourceNotFound = errors.New("admin: no JWKS source for this project")

// JWKSSource is a project's JWKS URL and the state of its import, as
// stored. The importer reads and writes it under a lease (LeaseOwner,
// LeaseUntil), so that with a shared store one node fetches at a time.
type JWKSSource struct {
	Project   string        `json:"project"`
	URL       string        `json:"url"`
	Refresh   time.Duration `json:"refresh"`
	Grace     time.Duration `json:"grace"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`

	// State of the import.
	ETag        string    `json:"etag,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitempty"` // last fetch started (success or not)
	LastFetch   time.Time `json:"last_fetch,omitempty"`   // last fetch that succeeded (200 or 304)
	NextFetch   time.Time `json:"next_fetch,omitempty"`   // when the schedule fetches next
	LastError   string    `json:"last_error,omitempty"`   // of the last attempt; "" when it succeeded
	// Imported lists the kids the source currently provides that are
	// registered for the project (sorted).
	Imported []string `json:"imported,omitempty"`
	// KeyErrors maps a kid of the JWKS (or "#<index>" when it has none)
	// to why it was not imported.
	KeyErrors map[string]string `json:"key_errors,omitempty"`
	// Missing maps a kid imported earlier and no longer published to when
	// it was first seen missing (the grace period runs from there).
	Missing map[string]time.Time `json:"missing,omitempty"`

	LeaseOwner string    `json:"lease_owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitempty"`
}

// JWKSSourceStore keeps the projects' JWKS sources. Every method is
// durable before it returns.
type JWKSSourceStore interface {
	// GetJWKSSource returns the project's source, or ErrSourceNotFound.
	GetJWKSSource(ctx context.Context, project string) (*JWKSSource, error)
	// ListJWKSSources returns every source, by project.
	ListJWKSSources(ctx context.Context) ([]*JWKSSource, error)
	// UpdateJWKSSource reads the project's source (nil when there is none),
	// calls fn with it, and stores what fn returns, atomically with
	// respect to other calls (on every node sharing the store). fn returns
	// nil to leave the store as it is, or an error to abort. fn may be
	// called more than once (a retried transaction).
	UpdateJWKSSource(ctx context.Context, project string, fn func(cur *JWKSSource) (*JWKSSource, error)) error
	// DeleteJWKSSource removes the project's source; ErrSourceNotFound
	// when there is none.
	DeleteJWKSSource(ctx context.Context, project string) error
}
