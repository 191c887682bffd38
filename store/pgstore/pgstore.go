// Package pgstore is a PostgreSQL key registry for jwtgate: one registry
// shared by many jwtgate nodes.
//
// A Store implements engine.KeyStore and engine.UsageRecorder over a pgx
// connection pool:
//
//	st, err := pgstore.Open(ctx, "postgres://jwtgate@db/jwtgate")
//	defer st.Close()
//	v, err := engine.New(st) // calls st.SetInvalidator(v)
//
// Open creates and migrates the schema itself (versioned in
// jwtgate_schema_migrations; nodes starting at once serialise on an advisory
// lock). At start the Verifier reads the kid of every key (ScanKIDs, for its
// index of registered kids: an unknown kid costs no query) and warms its
// key cache with the most recently used keys (RecentKeys); other keys are
// read by primary key on first use.
//
// # Change propagation
//
// Every change is committed before the method returns, and a trigger
// announces the changed kid on the LISTEN/NOTIFY channel "jwtgate_keys" in
// the same transaction (so also changes made by hand with psql). Each Store
// keeps one dedicated connection that LISTENs on the channel and calls the
// Invalidator (the Verifier) for every kid announced, dropping the key and
// the tokens it verified from the caches.
//
// NOTIFY is only the wake-up; the source of truth is a change revision in
// the database (table jwtgate_revision), bumped by the same trigger in the
// changing transaction and announced on channel "jwtgate_revision" after the
// kid. Every Store also polls it (every second by default, on the pool):
// when it has moved past the last revision the listener was told of, a
// notification was missed (the listener connection is down, or died
// silently), and the Store calls InvalidateAll. A change is therefore in
// force on every node within one poll even without notifications.
//
// When the listener connection is lost the Store reports itself unhealthy
// (Health, WriteMetrics), keeps polling, and reconnects with exponential
// backoff and full jitter (100 ms up to 5 s); once it listens again it calls
// InvalidateAll, because it cannot know what it missed.
//
// # Staleness bound
//
// Each successful poll confirms that the node has seen every change
// committed before the poll began. With a max-stale bound (WithMaxStale,
// default 5 s) the Store gives the Verifier a fence
// (engine.FreshnessFence): when no poll has succeeded for that long (the
// database is unreachable), verifies answer 503 — never a verdict from
// stale state — and the server's /readyz turns 503, until a poll succeeds
// again.
package pgstore

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
)

// Invalidator is what the Store tells about changes made elsewhere;
// *engine.Verifier implements it. (The server's optional store interfaces
// are checked in interfaces_test.go, so that the store does not import the
// server.)
type Invalidator = engine.Invalidator

var (
	_ engine.KeyStore      = (*Store)(nil)
	_ engine.UsageRecorder = (*Store)(nil)
)

// Option configures Open.
type Option func(*config)

type config struct {
	log          *slog.Logger
	maxStale     time.Duration
	pollInterval time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	heartbeat    time.Duration
	appName      string
	maxConns     int32
	noListener   bool
	queryTimeout time.Duration
}

// WithLogger sets the logger for connection events (never keys or tokens).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Defaults of the change-revision poll and the staleness bound.
const (
	DefaultPollInterval = time.Second
	DefaultMaxStale     = 5 * time.Second
)

// WithMaxStale bounds staleness: when the Store has not confirmed for d
// that it has seen every key change (no successful poll of the change
// revision), the Verifier answers verifies with ErrUnavailable (503) until
// a poll succeeds. Default DefaultMaxStale; 0 removes the bound (the node
// then verifies with its caches however long the database is unreachable).
// It must be longer than the poll interval.
func WithMaxStale(d time.Duration) Option { return func(c *config) { c.maxStale = d } }

// WithPollInterval sets how often the change revision is polled (default
// DefaultPollInterval): the longest a missed notification goes unnoticed.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithReconnectBackoff sets the listener's reconnection backoff bounds
// (defaults 100 ms and 5 s; each wait is drawn uniformly below the current
// bound, which doubles per failed attempt).
func WithReconnectBackoff(min, max time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = min, max }
}

// WithHeartbeat sets how often the idle listener connection is checked with
// a query, to notice a silently dead connection (default 5 s).
func WithHeartbeat(d time.Duration) Option { return func(c *config) { c.heartbeat = d } }

// WithApplicationName sets application_name on the pool's connections; the
// listener's is the same with "-listener" appended. Default "jwtgate", or
// the DSN's application_name.
func WithApplicationName(name string) Option { return func(c *config) { c.appName = name } }

// WithMaxConns bounds the connection pool (default: pgxpool's, max(4, CPUs)).
func WithMaxConns(n int32) Option { return func(c *config) { c.maxConns = n } }

// WithoutListener opens a Store that does not listen for changes (tools and
// one-shot commands).
func WithoutListener() Option { return func(c *config) { c.noListener = true } }

// Store is a PostgreSQL KeyStore. Safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	cfg  config
	log  *slog.Logger

	inv atomic.Pointer[invHolder]

	cancel   context.CancelFunc
	done     chan struct{} // closed when the listener has stopped
	pollDone chan struct{} // closed when the poller has stopped
	closeMu  sync.Once

	// listener state
	connected     atomic.Bool
	listenerPID   atomic.Uint32
	everConnected atomic.Bool
	reconnects    atomic.Uint64
	notifications atomic.Uint64
	invalidateAll atomic.Uint64
	stateMu       sync.Mutex
	downSince     time.Time // zero while connected
	lastErr       string
	readyCh       chan struct{} // closed when the listener first listens
	readyOnce     sync.Once

	// change-revision poll state
	notifiedRev   atomic.Int64 // highest revision announced to the listener
	syncedRev     int64        // poller only: revision the caches reflect
	revision      atomic.Int64 // last revision polled
	lastConfirmed atomic.Int64 // unix nanos: start of the last successful poll
	pollErrors    atomic.Uint64
	missed        atomic.Uint64 // polls that found a change not notified
	pollErr       string        // under stateMu: last poll error, "" after a success
}

type invHolder struct{ inv Invalidator }

// preciseInvalidation says whether Invalidate(kid) is enough to take a
// change into force. It is since engine commit 34221d7 ("Revoke key entries
// whose load was overtaken by an invalidation"): before it, a key entry
// loaded while an invalidation (of any kid) happened was returned but not
// cached, and tokens cached with it escaped every later Invalidate, so the
// Store had to call InvalidateAll for every change. Kept as a switch (with
// changedHere) in case an engine without that fix must be used.
const preciseInvalidation = true

// dsnOptions are query parameters of a postgres:// URL that configure the
// Store rather than the connection; they are removed before connecting.
var dsnOptions = map[string]func(*config, string) error{
	"jwtgate_max_stale": func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("jwtgate_max_stale=%q: want a duration such as 5s (0 removes the bound)", v)
		}
		c.maxStale = d
		return nil
	},
	"jwtgate_poll_interval": func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("jwtgate_poll_interval=%q: want a positive duration such as 1s", v)
		}
		c.pollInterval = d
		return nil
	},
}

// Open connects to PostgreSQL, migrates the schema and starts the change
// listener and the change-revision poller. The DSN is a postgres:// URL or
// keyword/value string as pgx accepts; a URL may also carry
// jwtgate_max_stale=<duration> (WithMaxStale) and
// jwtgate_poll_interval=<duration> (WithPollInterval); options given to
// Open win over them.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg := config{
		log: slog.New(slog.DiscardHandler), backoffMin: 100 * time.Millisecond, backoffMax: 5 * time.Second,
		heartbeat: 5 * time.Second, queryTimeout: 5 * time.Second,
		maxStale: DefaultMaxStale, pollInterval: DefaultPollInterval,
	}
	dsn, err := stripOptions(dsn, &cfg)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.pollInterval <= 0 || cfg.maxStale < 0 {
		return nil, errors.New("postgres store: the poll interval must be positive and max-stale not negative")
	}
	if cfg.maxStale > 0 && cfg.pollInterval >= cfg.maxStale {
		return nil, fmt.Errorf("postgres store: max-stale (%s) must be longer than the change poll interval (%s); raise max-stale, lower jwtgate_poll_interval, or set max-stale to 0 to remove the bound", cfg.maxStale, cfg.pollInterval)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: bad DSN: %s", redactErr(err))
	}
	if cfg.appName == "" {
		cfg.appName = pcfg.ConnConfig.RuntimeParams["application_name"]
	}
	if cfg.appName == "" {
		cfg.appName = "jwtgate"
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = cfg.appName
	if cfg.maxConns > 0 {
		pcfg.MaxConns = cfg.maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %s", redactErr(err))
	}
	if _, err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %s", redactErr(err))
	}
	lctx, cancel := context.WithCancel(context.Background())
	s := &Store{pool: pool, cfg: cfg, log: cfg.log, cancel: cancel, done: make(chan struct{}), pollDone: make(chan struct{}), readyCh: make(chan struct{})}
	s.downSince = time.Now()
	s.syncedRev = -1
	if cfg.noListener {
		close(s.done)
		close(s.pollDone)
		return s, nil
	}
	lcfg := pcfg.ConnConfig.Copy()
	lcfg.RuntimeParams["application_name"] = cfg.appName + "-listener"
	go s.listen(lctx, lcfg)
	// The first poll, before serving, starts the staleness bound.
	if err := s.poll(lctx); err != nil {
		s.log.Warn("postgres store: cannot read the change revision yet; retrying", "err", err)
	}
	go s.pollLoop(lctx)
	// Start listening before serving so that a fresh node misses nothing;
	// a database that is up but slow is not a reason to refuse to start.
	select {
	case <-s.readyCh:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		s.log.Warn("postgres store: change listener not connected yet; continuing")
	}
	return s, nil
}

func stripOptions(dsn string, cfg *config) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", errors.New("postgres store: the DSN is not a valid URL")
	}
	q := u.Query()
	changed := false
	for name, apply := range dsnOptions {
		if q.Has(name) {
			if err := apply(cfg, q.Get(name)); err != nil {
				return "", fmt.Errorf("postgres store: %w", err)
			}
			q.Del(name)
			changed = true
		}
	}
	if !changed {
		return dsn, nil
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redactErr returns err's message; pgx already leaves passwords out of its
// connection errors.
func redactErr(err error) string { return err.Error() }

// Close stops the listener and closes the pool.
func (s *Store) Close() error {
	s.closeMu.Do(func() {
		s.cancel()
		<-s.done
		<-s.pollDone
		s.pool.Close()
	})
	return nil
}

// Pool returns the connection pool (for tools and tests).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// SetInvalidator sets who is told about changes made elsewhere (engine.New
// calls it with the Verifier, before loading its registry index). It also
// drops whatever the Invalidator cached before, which the listener may not
// have covered.
func (s *Store) SetInvalidator(inv Invalidator) {
	if inv == nil {
		s.inv.Store(nil)
		return
	}
	s.inv.Store(&invHolder{inv})
	inv.InvalidateAll()
	if f, ok := inv.(engine.FreshnessFence); ok && !s.cfg.noListener && s.cfg.maxStale > 0 {
		f.SetFreshUntil(time.Unix(0, s.lastConfirmed.Load()).Add(s.cfg.maxStale))
	}
}

func (s *Store) invalidator() Invalidator {
	if h := s.inv.Load(); h != nil {
		return h.inv
	}
	return nil
}

// changedHere runs after this node committed an update or deletion (see
// preciseInvalidation).
func (s *Store) changedHere() {
	if preciseInvalidation {
		return
	}
	if inv := s.invalidator(); inv != nil {
		s.invalidateAll.Add(1)
		inv.InvalidateAll()
	}
}

const keyColumns = "kid, project, label, status, public_key, created_at, updated_at, last_used_at, verified_count"

func scanKey(row pgx.Row) (*engine.Key, error) {
	var (
		kid, project, label, status string
		der                         []byte
		created, updated            time.Time
		last                        *time.Time
		counted                     int64
	)
	if err := row.Scan(&kid, &project, &label, &status, &der, &created, &updated, &last, &counted); err != nil {
		return nil, err
	}
	return decodeKey(kid, project, label, status, der, created, updated, last, counted)
}

// decodeKey builds a key from its columns (keyColumns order).
func decodeKey(kid, project, label, status string, der []byte, created, updated time.Time, last *time.Time, counted int64) (*engine.Key, error) {
	k := engine.Key{KID: kid, Project: project, Label: label, Status: engine.KeyStatus(status)}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("postgres store: key %q: stored public key is corrupt: %w", k.KID, err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("postgres store: key %q: stored public key is not RSA", k.KID)
	}
	k.Public = rk
	k.CreatedAt, k.UpdatedAt = created.UTC(), updated.UTC()
	if last != nil {
		k.LastUsedAt = last.UTC()
	}
	if counted > 0 {
		k.VerifiedCount = uint64(counted)
	}
	return &k, nil
}

// Get implements engine.KeyStore: one lookup by primary key.
func (s *Store) Get(ctx context.Context, kid string) (*engine.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, "SELECT "+keyColumns+" FROM jwtgate_keys WHERE kid = $1", kid))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, engine.ErrKeyNotFound
	}
	if err != nil {
		return nil, wrap("get key", err)
	}
	return k, nil
}

// Create implements engine.KeyStore. The kid is unique across projects: of
// concurrent creations of one kid, on any nodes, exactly one succeeds and
// the others get engine.ErrKIDTaken.
func (s *Store) Create(ctx context.Context, k *engine.Key) error {
	if k == nil || k.Public == nil {
		return errors.New("postgres store: no key")
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		return fmt.Errorf("postgres store: encode public key: %w", err)
	}
	var last *time.Time
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt.UTC()
		last = &t
	}
	status := k.Status
	if status == "" {
		status = engine.StatusActive
	}
	err = s.inTx(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, `INSERT INTO jwtgate_keys (`+keyColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			k.KID, k.Project, k.Label, string(status), der, k.CreatedAt.UTC(), k.UpdatedAt.UTC(), last, clampCount(k.VerifiedCount)); err != nil {
			return err
		}
		return auditTx(ctx, q, nil, k)
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return engine.ErrKIDTaken
	}
	if err != nil {
		return wrap("create key", err)
	}
	return nil
}

func clampCount(n uint64) int64 {
	if n > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(n)
}

// Update implements engine.KeyStore.
func (s *Store) Update(ctx context.Context, project, kid string, u engine.KeyUpdate, now time.Time) (*engine.Key, error) {
	var label, status *string
	if u.Label != nil {
		label = u.Label
	}
	if u.Status != nil {
		st := string(*u.Status)
		status = &st
	}
	var k *engine.Key
	err := s.inTx(ctx, func(q querier) error {
		var before *engine.Key
		if admin.EventFrom(ctx) != nil {
			var err error
			if before, err = scanKey(q.QueryRow(ctx, "SELECT "+keyColumns+" FROM jwtgate_keys WHERE kid = $1 AND project = $2 FOR UPDATE", kid, project)); err != nil {
				return err
			}
		}
		var err error
		k, err = scanKey(q.QueryRow(ctx, `UPDATE jwtgate_keys
			SET label = coalesce($3, label), status = coalesce($4, status), updated_at = $5
			WHERE kid = $1 AND project = $2
			RETURNING `+keyColumns, kid, project, label, status, now.UTC()))
		if err != nil {
			return err
		}
		return auditTx(ctx, q, before, k)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, engine.ErrKeyNotFound
	}
	if err != nil {
		return nil, wrap("update key", err)
	}
	s.changedHere()
	return k, nil
}

// Delete implements engine.KeyStore.
func (s *Store) Delete(ctx context.Context, project, kid string) error {
	err := s.inTx(ctx, func(q querier) error {
		var before *engine.Key
		if admin.EventFrom(ctx) != nil {
			var err error
			if before, err = scanKey(q.QueryRow(ctx, "SELECT "+keyColumns+" FROM jwtgate_keys WHERE kid = $1 AND project = $2 FOR UPDATE", kid, project)); err != nil {
				return err
			}
		}
		tag, err := q.Exec(ctx, "DELETE FROM jwtgate_keys WHERE kid = $1 AND project = $2", kid, project)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return engine.ErrKeyNotFound
		}
		return auditTx(ctx, q, before, nil)
	})
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, engine.ErrKeyNotFound) {
		return engine.ErrKeyNotFound
	}
	if err != nil {
		return wrap("delete key", err)
	}
	s.changedHere()
	return nil
}

// List implements engine.KeyStore.
func (s *Store) List(ctx context.Context, project string) ([]*engine.Key, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+keyColumns+` FROM jwtgate_keys
		WHERE project = $1 ORDER BY created_at, kid COLLATE "C"`, project)
	if err != nil {
		return nil, wrap("list keys", err)
	}
	defer rows.Close()
	var out []*engine.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, wrap("list keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list keys", err)
	}
	engine.SortKeys(out)
	return out, nil
}

// RecordUsage implements engine.UsageRecorder: counts are added to what the
// other nodes recorded (verified_count = verified_count + n) and
// last_used_at only moves forward, in one statement per batch. Usage that
// names another registration of a kid (engine.Usage.Matches: the key was
// deleted and its kid registered again since) is ignored. Rows are locked
// in kid order so that nodes flushing at once cannot deadlock.
func (s *Store) RecordUsage(ctx context.Context, batch []engine.Usage) error {
	if len(batch) == 0 {
		return nil
	}
	n := len(batch)
	kids, projects := make([]string, 0, n), make([]string, 0, n)
	counts := make([]int64, 0, n)
	lasts, createds := make([]time.Time, 0, n), make([]time.Time, 0, n)
	for _, u := range batch {
		kids = append(kids, u.KID)
		projects = append(projects, u.Project)
		counts = append(counts, clampCount(u.Count))
		lasts = append(lasts, u.LastUsed.UTC())
		createds = append(createds, u.Created.UTC())
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT 1 FROM jwtgate_keys WHERE kid = ANY($1)
				ORDER BY kid COLLATE "C" FOR UPDATE`, kids); err != nil {
				return err
			}
			// Zero times (year 1) stand for "none": no last-used time, or
			// usage that names no registration.
			_, err := tx.Exec(ctx, `UPDATE jwtgate_keys AS k
				SET verified_count = k.verified_count + a.n,
				    last_used_at = GREATEST(k.last_used_at, a.t)
				FROM (SELECT r.kid, sum(u.n)::bigint AS n,
				             max(u.t) FILTER (WHERE u.t > '0001-01-02'::timestamptz) AS t
				      FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::timestamptz[])
				           AS u(kid, n, t, project, created)
				      JOIN jwtgate_keys AS r ON r.kid = u.kid
				           AND (u.project = '' OR r.project = u.project)
				           AND (u.created <= '0001-01-02'::timestamptz OR r.created_at = u.created)
				      GROUP BY r.kid) AS a
				WHERE k.kid = a.kid`, kids, counts, lasts, projects, createds)
			return err
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
			continue // deadlock or serialization failure: try again
		}
		break
	}
	if err != nil {
		return wrap("record usage", err)
	}
	return nil
}

func wrap(op string, err error) error { return fmt.Errorf("postgres store: %s: %w", op, err) }

// ListenerPID is the backend process ID of the change listener's
// connection, 0 while it is disconnected (for operators and tests:
// pg_stat_activity.pid).
func (s *Store) ListenerPID() uint32 { return s.listenerPID.Load() }

// Connected reports whether the change listener is connected.
func (s *Store) Connected() bool { return s.connected.Load() }

// backoff returns the wait before reconnection attempt n (0-based): none
// for the first (a lost connection is usually a blip), then jittered
// uniformly in [min/2, bound] where bound = min*2^(n-1), capped at max.
func (s *Store) backoff(n int) time.Duration {
	if n == 0 {
		return 0
	}
	bound := s.cfg.backoffMin
	for i := 1; i < n && bound < s.cfg.backoffMax; i++ {
		bound *= 2
	}
	bound = min(bound, s.cfg.backoffMax)
	return s.cfg.backoffMin/2 + time.Duration(rand.Int64N(int64(bound-s.cfg.backoffMin/2)+1))
}

func (s *Store) setDown(err error) {
	s.stateMu.Lock()
	if s.connected.Load() || s.downSince.IsZero() {
		s.downSince = time.Now()
	}
	if err != nil {
		s.lastErr = err.Error()
	}
	s.connected.Store(false)
	s.listenerPID.Store(0)
	s.stateMu.Unlock()
}

func (s *Store) listen(ctx context.Context, lcfg *pgx.ConnConfig) {
	defer close(s.done)
	attempt := 0
	for ctx.Err() == nil {
		if attempt > 0 || s.everConnected.Load() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.backoff(attempt)):
			}
		}
		attempt++
		conn, err := s.connectListener(ctx, lcfg)
		if err != nil {
			if ctx.Err() == nil {
				s.setDown(err)
				s.log.Warn("postgres store: change listener cannot connect; retrying", "attempt", attempt, "err", err)
			}
			continue
		}
		// Listening again: whatever happened while we were not is unknown.
		if s.everConnected.Swap(true) {
			s.reconnects.Add(1)
			s.log.Info("postgres store: change listener reconnected; dropping caches", "attempts", attempt)
		}
		if inv := s.invalidator(); inv != nil {
			s.invalidateAll.Add(1)
			inv.InvalidateAll()
		}
		s.stateMu.Lock()
		s.downSince = time.Time{}
		s.connected.Store(true)
		s.listenerPID.Store(conn.PgConn().PID())
		s.stateMu.Unlock()
		s.readyOnce.Do(func() { close(s.readyCh) })
		attempt = 0
		err = s.receive(ctx, conn)
		s.setDown(err)
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(cctx)
		cancel()
		if ctx.Err() == nil {
			s.log.Warn("postgres store: change listener lost its connection; reconnecting (changes are still found by polling the change revision)", "err", err)
		}
	}
}

func (s *Store) connectListener(ctx context.Context, lcfg *pgx.ConnConfig) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.queryTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, lcfg)
	if err != nil {
		return nil, err
	}
	for _, ch := range []string{Channel, RevisionChannel} {
		if _, err := conn.Exec(cctx, "LISTEN "+ch); err != nil {
			_ = conn.Close(context.Background())
			return nil, err
		}
	}
	return conn, nil
}

// receive handles notifications until the connection fails or ctx ends.
// An idle connection is checked every heartbeat with a query, so a
// connection that died silently is noticed.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.heartbeat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
				return err
			}
			hctx, cancel := context.WithTimeout(ctx, s.cfg.queryTimeout)
			_, err = conn.Exec(hctx, "SELECT 1")
			cancel()
			if err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
			continue
		}
		if n.Channel == RevisionChannel {
			// Sent after the kids of its transaction: they are applied.
			if r, err := strconv.ParseInt(n.Payload, 10, 64); err == nil && r > s.notifiedRev.Load() {
				s.notifiedRev.Store(r)
			}
			continue
		}
		s.notifications.Add(1)
		inv := s.invalidator()
		if inv == nil {
			continue
		}
		if n.Payload == "*" || !preciseInvalidation {
			s.invalidateAll.Add(1)
			inv.InvalidateAll()
		} else {
			inv.Invalidate(n.Payload)
		}
	}
}

// Health implements the server's HealthReporter: false while the change
// listener is disconnected or the change revision cannot be polled, with
// the cause. Past the max-stale bound the node refuses verifies (503).
func (s *Store) Health() (ok bool, detail string) {
	if s.cfg.noListener {
		return true, "postgres store (no change listener)"
	}
	unconfirmed := s.unconfirmedFor()
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	var problems []string
	if s.cfg.maxStale > 0 && unconfirmed > s.cfg.maxStale {
		problems = append(problems, fmt.Sprintf("key changes not confirmed for %s, over max-stale %s: verifies answer 503 until the database is reachable again", unconfirmed.Round(time.Second), s.cfg.maxStale))
	}
	if s.pollErr != "" {
		problems = append(problems, fmt.Sprintf("polling the change revision fails (last success %s ago): %s", unconfirmed.Round(time.Second), s.pollErr))
	}
	if !s.connected.Load() {
		d := time.Since(s.downSince).Round(time.Second)
		p := fmt.Sprintf("key-change listener disconnected for %s, reconnecting; changes are picked up by polling every %s", d, s.cfg.pollInterval)
		if s.lastErr != "" {
			p += ": " + s.lastErr
		}
		problems = append(problems, p)
	}
	if len(problems) == 0 {
		return true, "postgres store connected; listening for key changes and polling the change revision"
	}
	return false, "postgres store: " + strings.Join(problems, "; ")
}

// unconfirmedFor is the time since the start of the last successful poll.
func (s *Store) unconfirmedFor() time.Duration {
	return time.Since(time.Unix(0, s.lastConfirmed.Load()))
}

func (s *Store) pollLoop(ctx context.Context) {
	defer close(s.pollDone)
	t := time.NewTicker(s.cfg.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.poll(ctx)
		}
	}
}

// poll reads the change revision. A revision past the last one the
// listener was told of (after a short grace for a notification in flight)
// means a notification was missed: every cache is dropped. A successful
// poll confirms every change committed before it began, and moves the
// Verifier's staleness fence to that time + max-stale.
func (s *Store) poll(ctx context.Context) error {
	start := time.Now()
	qctx, cancel := context.WithTimeout(ctx, min(s.cfg.queryTimeout, max(s.cfg.pollInterval, 500*time.Millisecond)))
	var rev int64
	err := s.pool.QueryRow(qctx, "SELECT rev FROM jwtgate_revision").Scan(&rev)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.pollErrors.Add(1)
		s.stateMu.Lock()
		first := s.pollErr == ""
		s.pollErr = redactErr(err)
		s.stateMu.Unlock()
		if first {
			s.log.Warn("postgres store: cannot poll the change revision; retrying", "err", err)
		}
		return wrap("poll change revision", err)
	}
	s.revision.Store(rev)
	if rev != s.syncedRev {
		missed := rev < s.syncedRev // the counter went back (a restored database)
		if !missed && rev > s.notifiedRev.Load() {
			grace := time.Now().Add(min(s.cfg.pollInterval/4, 250*time.Millisecond))
			for s.notifiedRev.Load() < rev && time.Now().Before(grace) && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			missed = s.notifiedRev.Load() < rev
		}
		if missed {
			if rev < s.notifiedRev.Load() {
				s.notifiedRev.Store(rev)
			}
			if inv := s.invalidator(); inv != nil {
				if s.syncedRev >= 0 { // not the first poll: a change was missed
					s.missed.Add(1)
					s.log.Warn("postgres store: a key change was not notified; dropping caches", "revision", rev, "listener_connected", s.connected.Load())
				}
				s.invalidateAll.Add(1)
				inv.InvalidateAll()
			}
		}
		s.syncedRev = rev
	}
	s.lastConfirmed.Store(start.UnixNano())
	s.stateMu.Lock()
	recovered := s.pollErr != ""
	s.pollErr = ""
	s.stateMu.Unlock()
	if recovered {
		s.log.Info("postgres store: polling the change revision again")
	}
	if f, ok := s.invalidator().(engine.FreshnessFence); ok && s.cfg.maxStale > 0 {
		f.SetFreshUntil(start.Add(s.cfg.maxStale))
	}
	return nil
}
