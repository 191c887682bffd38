// Package boltstore is jwtgate's durable embedded key store: an
// engine.KeyStore and engine.UsageRecorder kept in a single bbolt file
// (keys.db in the server's data directory).
//
// Every write is one bbolt read-write transaction, fsynced to disk before the
// method returns, so a key whose Create returned survives a crash or power
// loss. Reads are bbolt read-only transactions and run in parallel with each
// other and with a writer.
//
// Layout of the file (schema version 1):
//
//	meta/schema_version          -> "1"
//	keys/<kid>                   -> JSON record {"v":1, ...}
//	projects/<project>/<idx>     -> "" (index: created_at (12 bytes) + kid)
//	audit/<seq>                  -> JSON audit event (seq: 8 bytes big-endian)
//	tokens/<id>                  -> JSON scoped admin token (hash, never the secret)
//	token_hashes/<sha256>        -> token id
//
// The audit and token buckets were added to version 1 without a version
// change: older builds ignore them.
//
// The per-project index keeps List proportional to the project's keys, in
// the order List promises (CreatedAt, then kid). Public keys are stored as
// PKIX (SubjectPublicKeyInfo) DER, times as RFC 3339 UTC with nanoseconds.
//
// Only one process may open the file at a time: a second Open fails after
// the lock timeout with an error saying the store is in use.
package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/parallel"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the file layout version this package writes and reads.
// Open refuses a file with a newer version.
const SchemaVersion = 1

// recordVersion is the version of the JSON key record encoding.
const recordVersion = 1

// DefaultLockTimeout is how long Open waits for the file lock held by
// another process before giving up.
const DefaultLockTimeout = time.Second

// ErrInUse is returned (wrapped) by Open when another process holds the
// store's file lock.
var ErrInUse = errors.New("key store is in use by another process")

// ErrCorrupt is wrapped by errors about records or index entries that cannot
// be decoded.
var ErrCorrupt = errors.New("key store record is corrupt")

var (
	bucketMeta     = []byte("meta")
	bucketKeys     = []byte("keys")
	bucketProjects = []byte("projects")
	keySchema      = []byte("schema_version")
)

// Option configures Open.
type Option func(*options)

type options struct {
	lockTimeout time.Duration
}

// WithLockTimeout sets how long Open waits for another process to release
// the file (default DefaultLockTimeout). It must be positive.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// Store is a KeyStore and UsageRecorder on a bbolt file. Safe for concurrent
// use. Create it with Open; release it with Close.
type Store struct {
	db   *bolt.DB
	path string

	closeMu sync.Mutex
	closed  atomic.Bool

	// decoded caches Get's decoding of records: kid -> *decoded. An entry
	// is used only when its raw record equals the stored one byte for byte,
	// so it can never be stale; it saves the JSON and DER parsing on the
	// Verifier's cache-miss path. At most maxDecoded entries.
	decoded  sync.Map
	nDecoded atomic.Int64
}

// maxDecoded bounds the decode cache (about 1 KiB per entry).
const maxDecoded = 16384

type decoded struct {
	raw []byte
	key *engine.Key
}

var (
	_ engine.KeyStore         = (*Store)(nil)
	_ engine.UsageRecorder    = (*Store)(nil)
	_ engine.RegistryScanner  = (*Store)(nil)
	_ engine.RecentKeysLoader = (*Store)(nil)
)

// Open opens the key store file at path, creating it (mode 0600) and its
// parent directory (mode 0700) when missing. It fails with an error wrapping
// ErrInUse when another process has the file open, and refuses files written
// by a newer schema version.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{lockTimeout: DefaultLockTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.lockTimeout <= 0 {
		return nil, errors.New("boltstore: lock timeout must be positive")
	}
	if path == "" {
		return nil, errors.New("boltstore: no key store path given")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: create key store directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, fmt.Errorf("boltstore: open %s: %w (waited %s for its lock)", path, ErrInUse, o.lockTimeout)
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
			return nil, fmt.Errorf("boltstore: open %s: not a valid jwtgate key store file (%v)", path, err)
		}
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := db.Update(initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

func initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta != nil {
		raw := meta.Get(keySchema)
		v, err := strconv.Atoi(string(raw))
		if err != nil || v < 1 {
			return fmt.Errorf("%w: bad schema version %q", ErrCorrupt, raw)
		}
		if v > SchemaVersion {
			return fmt.Errorf("key store schema version %d is newer than this jwtgate supports (%d): upgrade jwtgate", v, SchemaVersion)
		}
	} else {
		if tx.Bucket(bucketKeys) != nil {
			return fmt.Errorf("%w: keys without schema version", ErrCorrupt)
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return err
		}
	}
	if _, err := tx.CreateBucketIfNotExists(bucketKeys); err != nil {
		return err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketProjects); err != nil {
		return err
	}
	return initAdminBuckets(tx)
}

// Path is the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Close releases the file. It waits for running operations; afterwards every
// method returns engine.ErrStoreClosed. Calling it again returns nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Load() {
		return nil
	}
	s.closed.Store(true)
	return s.db.Close() // waits for running transactions
}

// Health reports whether the store is open (for the server's readiness
// report).
func (s *Store) Health() (ok bool, detail string) {
	if s.closed.Load() {
		return false, "key store closed"
	}
	return true, ""
}

// view runs fn in a read-only transaction. bbolt itself makes Close wait
// for running transactions and refuses new ones afterwards; that refusal
// becomes engine.ErrStoreClosed.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return closedErr(s.db.View(fn))
}

// update runs fn in a read-write transaction, committed and fsynced before
// it returns.
func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return closedErr(s.db.Update(fn))
}

func closedErr(err error) error {
	if err != nil && errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return engine.ErrStoreClosed
	}
	return err
}

// Get implements engine.KeyStore.
func (s *Store) Get(ctx context.Context, kid string) (*engine.Key, error) {
	var k *engine.Key
	err := s.view(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketKeys).Get([]byte(kid))
		if raw == nil {
			return engine.ErrKeyNotFound
		}
		if v, ok := s.decoded.Load(kid); ok {
			if d := v.(*decoded); bytes.Equal(d.raw, raw) {
				k = d.key.Clone()
				return nil
			}
		}
		var err error
		if k, err = decodeKey(kid, raw); err != nil {
			return err
		}
		s.remember(kid, raw, k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// remember caches k, decoded from raw (only valid during the transaction, so
// copied), unless the cache is full.
func (s *Store) remember(kid string, raw []byte, k *engine.Key) {
	d := &decoded{raw: bytes.Clone(raw), key: k.Clone()}
	if _, loaded := s.decoded.Swap(kid, d); !loaded {
		if s.nDecoded.Add(1) > maxDecoded {
			s.forget(kid)
		}
	}
}

func (s *Store) forget(kid string) {
	if _, loaded := s.decoded.LoadAndDelete(kid); loaded {
		s.nDecoded.Add(-1)
	}
}

// Create implements engine.KeyStore: ErrKIDTaken when the kid exists in any
// project. The key is on disk when it returns nil.
func (s *Store) Create(ctx context.Context, k *engine.Key) error {
	if k == nil {
		return errors.New("boltstore: no key given")
	}
	if k.KID == "" || len(k.KID) > engine.MaxKIDLength {
		return fmt.Errorf("boltstore: invalid kid (1 to %d characters)", engine.MaxKIDLength)
	}
	if k.Project == "" || len(k.Project) > bolt.MaxKeySize {
		return errors.New("boltstore: invalid project")
	}
	if k.Public == nil || k.Public.N == nil {
		return errors.New("boltstore: key has no public key")
	}
	rec, err := recordOf(k)
	if err != nil {
		return err
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("boltstore: encode key: %w", err)
	}
	idx := indexKey(k.CreatedAt, k.KID)
	kid := []byte(k.KID)
	err = s.update(ctx, func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		if keys.Get(kid) != nil {
			return engine.ErrKIDTaken
		}
		if err := keys.Put(kid, val); err != nil {
			return err
		}
		pb, err := tx.Bucket(bucketProjects).CreateBucketIfNotExists([]byte(k.Project))
		if err != nil {
			return err
		}
		if err := pb.Put(idx, nil); err != nil {
			return err
		}
		return auditInTx(ctx, tx, nil, k)
	})
	if err == nil {
		markRecorded(ctx)
	}
	return err
}

// Update implements engine.KeyStore.
func (s *Store) Update(ctx context.Context, project, kid string, u engine.KeyUpdate, now time.Time) (*engine.Key, error) {
	var out *engine.Key
	err := s.update(ctx, func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		rec, err := loadRecord(keys, kid)
		if err != nil {
			return err
		}
		if rec.Project != project {
			return engine.ErrKeyNotFound
		}
		var before *engine.Key
		if admin.EventFrom(ctx) != nil {
			if before, err = rec.key(kid); err != nil {
				return err
			}
		}
		if u.Label != nil {
			rec.Label = *u.Label
		}
		if u.Status != nil {
			rec.Status = string(*u.Status)
		}
		rec.UpdatedAt = formatTime(now)
		val, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("boltstore: encode key: %w", err)
		}
		if err := keys.Put([]byte(kid), val); err != nil {
			return err
		}
		if out, err = rec.key(kid); err != nil {
			return err
		}
		return auditInTx(ctx, tx, before, out)
	})
	if err != nil {
		return nil, err
	}
	markRecorded(ctx)
	return out, nil
}

// Delete implements engine.KeyStore.
func (s *Store) Delete(ctx context.Context, project, kid string) error {
	defer s.forget(kid)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		rec, err := loadRecord(keys, kid)
		if err != nil {
			return err
		}
		if rec.Project != project {
			return engine.ErrKeyNotFound
		}
		if admin.EventFrom(ctx) != nil {
			before, err := rec.key(kid)
			if err != nil {
				return err
			}
			if err := auditInTx(ctx, tx, before, nil); err != nil {
				return err
			}
		}
		created, err := parseTime(rec.CreatedAt)
		if err != nil {
			return corrupt(kid, err)
		}
		if err := keys.Delete([]byte(kid)); err != nil {
			return err
		}
		projects := tx.Bucket(bucketProjects)
		pb := projects.Bucket([]byte(project))
		if pb == nil {
			return nil // index missing: nothing more to remove
		}
		if err := pb.Delete(indexKey(created, kid)); err != nil {
			return err
		}
		if k, _ := pb.Cursor().First(); k == nil {
			return projects.DeleteBucket([]byte(project))
		}
		return nil
	})
	if err == nil {
		markRecorded(ctx)
	}
	return err
}

// List implements engine.KeyStore: the project's keys, oldest first
// (CreatedAt, then kid), read through the project's index.
func (s *Store) List(ctx context.Context, project string) ([]*engine.Key, error) {
	var out []*engine.Key
	err := s.view(func(tx *bolt.Tx) error {
		pb := tx.Bucket(bucketProjects).Bucket([]byte(project))
		if pb == nil {
			return nil
		}
		keys := tx.Bucket(bucketKeys)
		c := pb.Cursor()
		for ik, _ := c.First(); ik != nil; ik, _ = c.Next() {
			if len(ik) <= indexTimeLen {
				return fmt.Errorf("%w: bad index entry in project %q", ErrCorrupt, project)
			}
			kid := string(ik[indexTimeLen:])
			raw := keys.Get(ik[indexTimeLen:])
			if raw == nil {
				return fmt.Errorf("%w: index of project %q names missing kid %q", ErrCorrupt, project, kid)
			}
			k, err := decodeKey(kid, raw)
			if err != nil {
				return err
			}
			out = append(out, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ScanKIDs implements engine.RegistryScanner: one pass over the key
// records in one read transaction, reading each record's project without
// decoding the record.
func (s *Store) ScanKIDs(ctx context.Context, fn func(kid, project []byte)) error {
	return s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketKeys).Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			project := stringField(v, projectField)
			if project == nil {
				// Not the encoding this version writes: decode it properly.
				r, err := decodeRecord(string(k), v)
				if err != nil {
					return err
				}
				project = []byte(r.Project)
			}
			fn(k, project)
		}
		return nil
	})
}

var projectField = []byte(`"project":"`)

// stringField returns the raw value of the first "name":"value" in a JSON
// record whose value has no escapes (project IDs and times never do), or
// nil. In the records json.Marshal writes, the project and last_used_at
// come before or after the free-text label, whose quotes are escaped, so
// the first match is the field itself.
func stringField(raw, field []byte) []byte {
	i := bytes.Index(raw, field)
	if i < 0 {
		return nil
	}
	rest := raw[i+len(field):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return nil
	}
	return rest[:j]
}

// RecentKeys implements engine.RecentKeysLoader: one pass over the records
// reading only their last_used_at, then the n most recent are decoded (on
// all cores).
func (s *Store) RecentKeys(ctx context.Context, n int) ([]*engine.Key, error) {
	if n <= 0 {
		return nil, nil
	}
	type recent struct {
		kid, raw []byte
		last     int64 // unix nanos; math.MinInt64 when never used
	}
	var all []recent
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketKeys).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(all)%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			all = append(all, recent{kid: k, raw: v, last: lastUsedOf(v)})
		}
		slices.SortFunc(all, func(a, b recent) int {
			if c := cmp.Compare(b.last, a.last); c != 0 {
				return c
			}
			return bytes.Compare(a.kid, b.kid)
		})
		all = all[:min(n, len(all))]
		for i := range all { // valid only in the transaction
			all[i].kid, all[i].raw = bytes.Clone(all[i].kid), bytes.Clone(all[i].raw)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*engine.Key, len(all))
	errs := make([]error, len(all))
	parallel.For(len(all), func(i int) {
		out[i], errs[i] = decodeKey(string(all[i].kid), all[i].raw)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

var lastUsedField = []byte(`"last_used_at":"`)

// lastUsedOf reads a record's last_used_at without decoding the record;
// math.MinInt64 when it has none (or it cannot be read: such a record is
// simply not warmed).
func lastUsedOf(raw []byte) int64 {
	v := stringField(raw, lastUsedField)
	if v == nil {
		return math.MinInt64
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return math.MinInt64
	}
	return t.UnixNano()
}

// ImportKeys stores many new keys in one transaction (one fsync): bulk
// loading for tools and benchmarks. Like Create, a kid that exists already
// is engine.ErrKIDTaken, and then nothing is stored.
func (s *Store) ImportKeys(ctx context.Context, ks []*engine.Key) error {
	type item struct {
		kid, project, idx, val []byte
	}
	items := make([]item, 0, len(ks))
	for _, k := range ks {
		if k == nil || k.KID == "" || len(k.KID) > engine.MaxKIDLength || k.Project == "" || k.Public == nil || k.Public.N == nil {
			return errors.New("boltstore: import: a key lacks its kid, project or public key")
		}
		rec, err := recordOf(k)
		if err != nil {
			return err
		}
		val, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("boltstore: encode key: %w", err)
		}
		items = append(items, item{[]byte(k.KID), []byte(k.Project), indexKey(k.CreatedAt, k.KID), val})
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		keys.FillPercent = 0.9
		projects := tx.Bucket(bucketProjects)
		for _, it := range items {
			if keys.Get(it.kid) != nil {
				return engine.ErrKIDTaken
			}
			if err := keys.Put(it.kid, it.val); err != nil {
				return err
			}
			pb, err := projects.CreateBucketIfNotExists(it.project)
			if err != nil {
				return err
			}
			if err := pb.Put(it.idx, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// RecordUsage implements engine.UsageRecorder: all of the batch in one
// transaction; unknown kids and usage of another registration of a kid
// (engine.Usage.Matches) are ignored.
func (s *Store) RecordUsage(ctx context.Context, batch []engine.Usage) error {
	if len(batch) == 0 {
		return nil
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		for _, u := range batch {
			rec, err := loadRecord(keys, u.KID)
			if errors.Is(err, engine.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !u.Created.IsZero() || u.Project != "" {
				// Another registration of this kid (deleted and registered
				// again since): its usage is not this key's.
				created, err := parseTime(rec.CreatedAt)
				if err != nil {
					return corrupt(u.KID, err)
				}
				if !u.Matches(&engine.Key{KID: u.KID, Project: rec.Project, CreatedAt: created}) {
					continue
				}
			}
			last, err := parseOptTime(rec.LastUsedAt)
			if err != nil {
				return corrupt(u.KID, err)
			}
			changed := false
			if u.Count != 0 {
				rec.VerifiedCount += u.Count
				changed = true
			}
			if u.LastUsed.After(last) {
				rec.LastUsedAt = formatTime(u.LastUsed)
				changed = true
			}
			if !changed {
				continue
			}
			val, err := json.Marshal(rec)
			if err != nil {
				return fmt.Errorf("boltstore: encode key: %w", err)
			}
			if err := keys.Put([]byte(u.KID), val); err != nil {
				return err
			}
		}
		return nil
	})
}

// record is the stored form of a key (version 1).
type record struct {
	V             int    `json:"v"`
	Project       string `json:"project"`
	Label         string `json:"label"`
	Status        string `json:"status"`
	Public        []byte `json:"public_key"` // PKIX DER
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
	LastUsedAt    string `json:"last_used_at,omitempty"`
	VerifiedCount uint64 `json:"verified_count"`
}

func recordOf(k *engine.Key) (*record, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		return nil, fmt.Errorf("boltstore: encode public key: %w", err)
	}
	for _, t := range []time.Time{k.CreatedAt, k.UpdatedAt, k.LastUsedAt} {
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return nil, errors.New("boltstore: key time out of range (years 0 to 9999)")
		}
	}
	r := &record{
		V:             recordVersion,
		Project:       k.Project,
		Label:         k.Label,
		Status:        string(k.Status),
		Public:        der,
		CreatedAt:     formatTime(k.CreatedAt),
		UpdatedAt:     formatTime(k.UpdatedAt),
		VerifiedCount: k.VerifiedCount,
	}
	if !k.LastUsedAt.IsZero() {
		r.LastUsedAt = formatTime(k.LastUsedAt)
	}
	return r, nil
}

func loadRecord(keys *bolt.Bucket, kid string) (*record, error) {
	raw := keys.Get([]byte(kid))
	if raw == nil {
		return nil, engine.ErrKeyNotFound
	}
	return decodeRecord(kid, raw)
}

func decodeRecord(kid string, raw []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, corrupt(kid, err)
	}
	if r.V != recordVersion {
		return nil, corrupt(kid, fmt.Errorf("unsupported record version %d", r.V))
	}
	return &r, nil
}

func decodeKey(kid string, raw []byte) (*engine.Key, error) {
	r, err := decodeRecord(kid, raw)
	if err != nil {
		return nil, err
	}
	return r.key(kid)
}

func (r *record) key(kid string) (*engine.Key, error) {
	pk, err := x509.ParsePKIXPublicKey(r.Public)
	if err != nil {
		return nil, corrupt(kid, err)
	}
	pub, ok := pk.(*rsa.PublicKey)
	if !ok {
		return nil, corrupt(kid, errors.New("public key is not RSA"))
	}
	k := &engine.Key{
		KID:           kid,
		Project:       r.Project,
		Label:         r.Label,
		Status:        engine.KeyStatus(r.Status),
		Public:        pub,
		VerifiedCount: r.VerifiedCount,
	}
	if k.CreatedAt, err = parseTime(r.CreatedAt); err != nil {
		return nil, corrupt(kid, err)
	}
	if k.UpdatedAt, err = parseTime(r.UpdatedAt); err != nil {
		return nil, corrupt(kid, err)
	}
	if k.LastUsedAt, err = parseOptTime(r.LastUsedAt); err != nil {
		return nil, corrupt(kid, err)
	}
	return k, nil
}

func corrupt(kid string, err error) error {
	return fmt.Errorf("%w: kid %q: %v", ErrCorrupt, kid, err)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func parseOptTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return parseTime(s)
}

// indexTimeLen is the length of the created_at prefix of an index key:
// seconds since 1970 with the sign bit flipped (so negative ones sort first),
// then nanoseconds, both big-endian. Byte order of index keys is therefore
// CreatedAt order, then kid order.
const indexTimeLen = 12

func indexKey(created time.Time, kid string) []byte {
	b := make([]byte, indexTimeLen, indexTimeLen+len(kid))
	binary.BigEndian.PutUint64(b, uint64(created.Unix())^(1<<63))
	binary.BigEndian.PutUint32(b[8:], uint32(created.Nanosecond()))
	return append(b, kid...)
}
