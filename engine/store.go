package engine

import (
	"context"
	"slices"
	"sync"
	"time"
)

// KeyStore is the key registry the Verifier reads keys from. The server's
// durable embedded store, MemoryStore and the PostgreSQL store implement it.
//
// Implementations must be safe for concurrent use. Every method returns
// copies: the caller may keep and change what it gets. A store that learns
// of changes made elsewhere (another node) must tell the Verifier with
// Verifier.Invalidate or Verifier.InvalidateAll.
type KeyStore interface {
	// Get returns the key with that kid, or ErrKeyNotFound.
	Get(ctx context.Context, kid string) (*Key, error)
	// Create stores a new key; ErrKIDTaken if the kid exists (in any
	// project). It must be durable before it returns.
	Create(ctx context.Context, k *Key) error
	// Update changes label and/or status of the project's key and sets
	// UpdatedAt to now; ErrKeyNotFound if the kid is not the project's.
	Update(ctx context.Context, project, kid string, u KeyUpdate, now time.Time) (*Key, error)
	// Delete removes the project's key; ErrKeyNotFound if the kid is not
	// the project's.
	Delete(ctx context.Context, project, kid string) error
	// List returns the project's keys, oldest first (by CreatedAt, then kid).
	List(ctx context.Context, project string) ([]*Key, error)
}

// RegistryScanner is implemented by stores that can list every registered
// kid cheaply. The Verifier then keeps an index of the registry's kids in
// memory (loaded at start and after InvalidateAll, kept current by its own
// changes and the store's change feed), so that a token with an unknown kid
// is refused without a store read.
type RegistryScanner interface {
	// ScanKIDs calls fn with the kid and project of every registered key,
	// in any order. The slices are valid only during the call.
	ScanKIDs(ctx context.Context, fn func(kid, project []byte)) error
}

// RecentKeysLoader is implemented by stores that can return their most
// recently used keys at once; the Verifier warms its key cache with them
// after loading the registry index, so that a node joining a busy tier
// does not read its hot keys one request at a time.
type RecentKeysLoader interface {
	// RecentKeys returns up to n keys, most recently used first (keys never
	// used last).
	RecentKeys(ctx context.Context, n int) ([]*Key, error)
}

// ChangeFeed is implemented by stores that learn of changes made elsewhere
// (another node). New calls SetInvalidator with the Verifier before it
// loads the registry index; the store calls Invalidate for each change,
// and InvalidateAll (which reloads the index) whenever it may have missed
// some, including when it is given the Verifier.
type ChangeFeed interface {
	SetInvalidator(Invalidator)
}

// Usage is a batch of verifications counted for one key since the last
// flush.
type Usage struct {
	KID      string
	Count    uint64
	LastUsed time.Time
	// Project and Created name the registration that was used (the key's
	// Project and CreatedAt); when set, a store applies the usage only to a
	// key with that kid, project and creation time, so that a kid deleted
	// and registered again does not inherit the old key's usage. Zero
	// values match any key with the kid.
	Project string
	Created time.Time
}

// Matches reports whether u may be applied to k: same kid, and the same
// registration when u names one.
func (u Usage) Matches(k *Key) bool {
	return k != nil && u.KID == k.KID &&
		(u.Project == "" || u.Project == k.Project) &&
		(u.Created.IsZero() || u.Created.Equal(k.CreatedAt))
}

// UsageRecorder is implemented by stores that persist last_used_at and
// verified_count. RecordUsage adds each Count to the key's VerifiedCount and
// moves LastUsedAt forward (never back); unknown kids, and usage of another
// registration of the kid (Usage.Matches), are ignored.
type UsageRecorder interface {
	RecordUsage(ctx context.Context, batch []Usage) error
}

// SortKeys orders keys oldest first (CreatedAt, then kid), the order List
// promises.
func SortKeys(keys []*Key) {
	slices.SortFunc(keys, func(a, b *Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		switch {
		case a.KID < b.KID:
			return -1
		case a.KID > b.KID:
			return 1
		}
		return 0
	})
}

// ApplyUsage adds u to k, the way UsageRecorder implementations do.
func ApplyUsage(k *Key, u Usage) {
	k.VerifiedCount += u.Count
	if u.LastUsed.After(k.LastUsedAt) {
		k.LastUsedAt = u.LastUsed.UTC()
	}
}

// MemoryStore is an in-memory KeyStore (and UsageRecorder) for tests and
// single-process use. Safe for concurrent use. The zero value is not ready:
// use NewMemoryStore.
type MemoryStore struct {
	mu   sync.RWMutex
	keys map[string]*Key
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{keys: make(map[string]*Key)} }

// Get implements KeyStore.
func (s *MemoryStore) Get(_ context.Context, kid string) (*Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[kid]
	if !ok {
		return nil, ErrKeyNotFound
	}
	return k.Clone(), nil
}

// Create implements KeyStore.
func (s *MemoryStore) Create(_ context.Context, k *Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.KID]; ok {
		return ErrKIDTaken
	}
	s.keys[k.KID] = k.Clone()
	return nil
}

// Update implements KeyStore.
func (s *MemoryStore) Update(_ context.Context, project, kid string, u KeyUpdate, now time.Time) (*Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[kid]
	if !ok || k.Project != project {
		return nil, ErrKeyNotFound
	}
	if u.Label != nil {
		k.Label = *u.Label
	}
	if u.Status != nil {
		k.Status = *u.Status
	}
	k.UpdatedAt = now.UTC()
	return k.Clone(), nil
}

// Delete implements KeyStore.
func (s *MemoryStore) Delete(_ context.Context, project, kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[kid]
	if !ok || k.Project != project {
		return ErrKeyNotFound
	}
	delete(s.keys, kid)
	return nil
}

// List implements KeyStore.
func (s *MemoryStore) List(_ context.Context, project string) ([]*Key, error) {
	s.mu.RLock()
	var out []*Key
	for _, k := range s.keys {
		if k.Project == project {
			out = append(out, k.Clone())
		}
	}
	s.mu.RUnlock()
	SortKeys(out)
	return out, nil
}

// RecordUsage implements UsageRecorder.
func (s *MemoryStore) RecordUsage(_ context.Context, batch []Usage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range batch {
		if k, ok := s.keys[u.KID]; ok && u.Matches(k) {
			ApplyUsage(k, u)
		}
	}
	return nil
}

// Invalidator drops cached state about keys. *Verifier implements it; a
// store that learns of changes made elsewhere (another node) is given one
// and calls it for each change, or InvalidateAll when it cannot know what
// it missed.
type Invalidator interface {
	Invalidate(kid string)
	InvalidateAll()
}

// FreshnessFence is implemented by *Verifier: a store that learns of
// changes made elsewhere and can tell how current it is bounds the
// staleness of verifies with it (Verifier.SetFreshUntil).
type FreshnessFence interface {
	SetFreshUntil(t time.Time)
}

var (
	_ Invalidator    = (*Verifier)(nil)
	_ FreshnessFence = (*Verifier)(nil)
)
