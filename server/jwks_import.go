package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
)

// ImportLabel is the label of the keys a JWKS import registers. The
// import updates and retires only the project's keys with this label.
const ImportLabel = "jwks-import"

// importActor is the audit actor id of the import (actor type "system").
const importActor = "jwks-import"

// jwksLease is how long a node holds a source while it fetches and
// applies it (a node that dies mid-way frees it after this).
const jwksLease = 30 * time.Second

// importer keeps the keys of the projects with a JWKS source matching
// their JWKS. Each node runs one; a source's lease in the store makes the
// nodes sharing a store take turns, and the store's change feed spreads
// the key changes to the other nodes' verifiers.
type importer struct {
	s      *Server
	store  admin.JWKSSourceStore
	cfg    JWKSImportConfig
	client *http.Client
	node   string

	// srcs is the projects with a source, refreshed from the store by the
	// loop (never by the verify path): it holds only configured projects,
	// so that unknown-kid signals cannot grow it.
	srcs atomic.Pointer[map[string]*srcSignal]
	kick chan struct{}

	runMu      sync.Mutex // one sync at a time on this node
	stop, done chan struct{}
	// base is cancelled on shutdown, ending a fetch in progress.
	base   context.Context
	cancel context.CancelFunc
}

// srcSignal is the verify path's note that a token named an unknown kid
// for the project.
type srcSignal struct {
	last   atomic.Int64 // unix nanos of the last signal taken
	wanted atomic.Bool
}

func newImporter(s *Server, st admin.JWKSSourceStore, cfg JWKSImportConfig) *importer {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultJWKSInterval
	}
	if cfg.UnknownKIDInterval <= 0 {
		cfg.UnknownKIDInterval = DefaultJWKSUnknownKIDInterval
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	base, cancel := context.WithCancel(context.Background())
	return &importer{s: s, store: st, cfg: cfg, client: newJWKSClient(cfg), node: hex.EncodeToString(id[:]),
		kick: make(chan struct{}, 1), base: base, cancel: cancel}
}

// unknownKID is called by the verify path when a token for project named
// a kid the registry does not hold. It allocates nothing, reads no store
// and never blocks: it notes the project (when it has a source and its
// last note is older than UnknownKIDInterval) and wakes the loop.
func (im *importer) unknownKID(project []byte) {
	m := im.srcs.Load()
	if m == nil {
		return
	}
	sig := (*m)[string(project)]
	if sig == nil {
		return
	}
	now := time.Now().UnixNano()
	last := sig.last.Load()
	if last != 0 && now-last < int64(im.cfg.UnknownKIDInterval) {
		return
	}
	if !sig.last.CompareAndSwap(last, now) {
		return
	}
	sig.wanted.Store(true)
	select {
	case im.kick <- struct{}{}:
	default:
	}
}

func (im *importer) start() {
	im.stop, im.done = make(chan struct{}), make(chan struct{})
	go im.loop()
}

func (im *importer) shutdown() {
	im.cancel()
	if im.stop == nil {
		return
	}
	close(im.stop)
	<-im.done
}

func (im *importer) loop() {
	defer close(im.done)
	t := time.NewTicker(im.cfg.Interval)
	defer t.Stop()
	im.runAll()
	for {
		select {
		case <-im.stop:
			return
		case <-t.C:
		case <-im.kick:
		}
		im.runAll()
	}
}

// runAll refreshes the list of sources and syncs each that is due.
func (im *importer) runAll() {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	srcs, err := im.store.ListJWKSSources(ctx)
	cancel()
	if err != nil {
		im.s.log.Warn("jwks import: listing the sources failed", "err", err.Error())
		return
	}
	old := im.srcs.Load()
	next := make(map[string]*srcSignal, len(srcs))
	for _, src := range srcs {
		if old != nil && (*old)[src.Project] != nil {
			next[src.Project] = (*old)[src.Project]
		} else {
			next[src.Project] = &srcSignal{}
		}
	}
	if old == nil || !maps.EqualFunc(*old, next, func(a, b *srcSignal) bool { return a == b }) {
		im.srcs.Store(&next)
	}
	for _, src := range srcs {
		select {
		case <-im.stop:
			return
		default:
		}
		triggered := next[src.Project].wanted.Swap(false)
		if !im.due(src, time.Now().UTC(), triggered) {
			continue // the snapshot says so: no locking transaction
		}
		if _, err := im.sync(src.Project, triggered); err != nil && !errors.Is(err, admin.ErrSourceNotFound) {
			im.s.log.Warn("jwks import: sync failed", "project", src.Project, "err", err.Error())
		}
	}
}

// sync fetches the project's JWKS and applies it when it is due
// (scheduled, or triggered: an unknown kid was seen, due when the last
// attempt is older than UnknownKIDInterval) and no other node holds the
// source. It reports whether it fetched.
func (im *importer) sync(project string, triggered bool) (bool, error) {
	im.runMu.Lock()
	defer im.runMu.Unlock()
	ctx, cancel := context.WithTimeout(im.base, adminTimeout+JWKSFetchTimeout)
	defer cancel()
	now := time.Now().UTC()
	var src *admin.JWKSSource
	err := im.store.UpdateJWKSSource(ctx, project, func(cur *admin.JWKSSource) (*admin.JWKSSource, error) {
		src = nil
		if cur == nil {
			return nil, admin.ErrSourceNotFound
		}
		if !im.due(cur, now, triggered) {
			return nil, nil // not due, or another node is at it
		}
		cur.LeaseOwner, cur.LeaseUntil, cur.LastAttempt = im.node, now.Add(jwksLease), now
		src = cur
		return cur, nil
	})
	if err != nil || src == nil {
		return false, err
	}
	res, ferr := fetchJWKS(ctx, im.client, src.URL, src.ETag)
	st := importState{imported: src.Imported, keyErrors: src.KeyErrors, missing: maps.Clone(src.Missing)}
	if st.missing == nil {
		st.missing = map[string]time.Time{}
	}
	interval := src.Refresh
	switch {
	case ferr != nil:
		// Nothing changes on a failed fetch: the keys stay as they are
		// until the JWKS can be read again.
		im.s.log.Warn("jwks import: fetch failed", "project", project, "err", ferr.Error())
	case res.notModified:
		ferr = im.apply(ctx, project, nil, src.Grace, &st, now, true)
	default:
		keys, keyErrs, perr := parseJWKS(res.body, im.s.v.KeyPolicy())
		if perr != nil {
			ferr = perr
			im.s.log.Warn("jwks import: the JWKS was refused", "project", project, "err", perr.Error())
			break
		}
		st.keyErrors = keyErrs
		ferr = im.apply(ctx, project, keys, src.Grace, &st, now, false)
	}
	if ferr != nil {
		// Retry sooner than the refresh.
		interval = min(src.Refresh, 30*time.Second)
	}
	if ferr == nil && res.maxAge > interval {
		interval = min(res.maxAge, 24*time.Hour)
	}
	err = im.store.UpdateJWKSSource(ctx, project, func(cur *admin.JWKSSource) (*admin.JWKSSource, error) {
		if cur == nil {
			return nil, nil // removed meanwhile
		}
		if cur.LeaseOwner == im.node {
			cur.LeaseOwner, cur.LeaseUntil = "", time.Time{}
		}
		if cur.URL != src.URL {
			cur.NextFetch = time.Time{} // changed meanwhile: fetch the new URL next
			return cur, nil
		}
		cur.NextFetch = now.Add(interval)
		if ferr != nil {
			cur.LastError = ferr.Error()
			return cur, nil
		}
		cur.LastError, cur.LastFetch, cur.ETag = "", time.Now().UTC(), res.etag
		cur.Imported, cur.KeyErrors, cur.Missing = st.imported, st.keyErrors, st.missing
		if len(cur.KeyErrors) == 0 {
			cur.KeyErrors = nil
		}
		if len(cur.Missing) == 0 {
			cur.Missing = nil
		}
		return cur, nil
	})
	return true, err
}

// due reports whether src should be fetched now by this node: no other
// node holds its lease, and it is scheduled, or triggered by an unknown
// kid with the last attempt (by any node) older than UnknownKIDInterval.
func (im *importer) due(src *admin.JWKSSource, now time.Time, triggered bool) bool {
	if src.LeaseOwner != "" && src.LeaseOwner != im.node && now.Before(src.LeaseUntil) {
		return false
	}
	return !now.Before(src.NextFetch) ||
		triggered && now.Sub(src.LastAttempt) >= im.cfg.UnknownKIDInterval
}

type importState struct {
	imported  []string
	keyErrors map[string]string
	missing   map[string]time.Time
}

// apply makes the project's imported keys match keys: new kids are
// registered (through the Verifier, as a POST would: the key policy, the
// registry index and the change feed all see them), a kid whose key
// changed is registered again, a reappearing key is reactivated, and a
// key no longer published is deactivated after grace and deleted after
// another grace. With onlyRetire (304: the JWKS did not change) only the
// retirement runs.
func (im *importer) apply(ctx context.Context, project string, keys []jwksKey, grace time.Duration, st *importState, now time.Time, onlyRetire bool) error {
	v := im.s.v
	existing, err := v.ListKeys(ctx, project)
	if err != nil {
		im.s.log.Warn("jwks import: listing the project's keys failed", "project", project, "err", err.Error())
		return errors.New("the key store could not list the project's keys; nothing was changed")
	}
	byKID := make(map[string]*engine.Key, len(existing))
	for _, k := range existing {
		byKID[k.KID] = k
	}
	published := map[string]bool{}
	if onlyRetire {
		for _, kid := range st.imported {
			published[kid] = true
		}
	} else {
		if st.keyErrors == nil {
			st.keyErrors = map[string]string{}
		}
		st.imported = nil
		for _, jk := range keys {
			published[jk.kid] = true
			ek := byKID[jk.kid]
			switch {
			case ek == nil:
				if im.add(ctx, project, jk, st) {
					st.imported = append(st.imported, jk.kid)
				}
			case ek.Label != ImportLabel:
				st.keyErrors[jk.kid] = "a key with this kid was registered in this project by other means (label is not " + ImportLabel + "); it is left as it is"
			case engine.Thumbprint(ek.Public) != engine.Thumbprint(jk.pub):
				// Keys are immutable: the kid now names another key.
				if im.del(ctx, project, ek) && im.add(ctx, project, jk, st) {
					st.imported = append(st.imported, jk.kid)
				}
			default:
				delete(st.missing, jk.kid)
				if ek.Status != engine.StatusActive {
					im.setStatus(ctx, project, ek, engine.StatusActive)
				}
				st.imported = append(st.imported, jk.kid)
			}
			if published[jk.kid] {
				delete(st.missing, jk.kid)
			}
		}
		slices.Sort(st.imported)
	}
	for _, ek := range existing {
		if ek.Label != ImportLabel || published[ek.KID] {
			continue
		}
		since, ok := st.missing[ek.KID]
		if !ok {
			since = now
			st.missing[ek.KID] = now
		}
		age := now.Sub(since)
		switch {
		case ek.Status == engine.StatusActive && age >= grace:
			im.setStatus(ctx, project, ek, engine.StatusInactive)
		case ek.Status != engine.StatusActive && age >= 2*grace:
			if im.del(ctx, project, ek) {
				delete(st.missing, ek.KID)
			}
		}
	}
	for kid := range st.missing {
		if k := byKID[kid]; k == nil || k.Label != ImportLabel {
			delete(st.missing, kid) // deleted or taken over by hand
		}
	}
	return nil
}

func (im *importer) event(e admin.Event) *admin.Event {
	e.ActorType, e.ActorID = admin.ActorSystem, importActor
	e.Time = time.Now().UTC().Truncate(time.Microsecond)
	return &e
}

func (im *importer) add(ctx context.Context, project string, jk jwksKey, st *importState) bool {
	ev := im.event(admin.Event{Action: admin.ActionKeyImported, Project: project, KID: jk.kid})
	nk, err := im.s.v.AddKey(admin.WithEvent(ctx, ev), &engine.Key{KID: jk.kid, Project: project, Label: ImportLabel, Public: jk.pub})
	switch {
	case errors.Is(err, engine.ErrKIDTaken):
		st.keyErrors[jk.kid] = "the kid is registered in another project; it is not taken over"
		return false
	case err != nil:
		st.keyErrors[jk.kid] = "registering the key failed: " + err.Error()
		im.s.log.Warn("jwks import: registering a key failed", "project", project, "kid", jk.kid, "err", err.Error())
		return false
	}
	if !ev.Recorded {
		ev.After = admin.KeySnapshot(nk)
	}
	im.s.finishAudit(ev)
	im.s.log.Info("jwks import: key imported", "project", project, "kid", nk.KID, "bits", nk.Bits(), "thumbprint", nk.Thumbprint())
	return true
}

func (im *importer) setStatus(ctx context.Context, project string, ek *engine.Key, status engine.KeyStatus) {
	ev := im.event(admin.Event{Action: admin.ActionKeyUpdated, Project: project, KID: ek.KID})
	k, err := im.s.v.UpdateKey(admin.WithEvent(ctx, ev), project, ek.KID, engine.KeyUpdate{Status: &status})
	if err != nil {
		im.s.log.Warn("jwks import: changing a key's status failed", "project", project, "kid", ek.KID, "err", err.Error())
		return
	}
	if !ev.Recorded {
		ev.Before, ev.After = admin.KeySnapshot(ek), admin.KeySnapshot(k)
	}
	im.s.finishAudit(ev)
	im.s.log.Info("jwks import: key status changed", "project", project, "kid", ek.KID, "status", string(status))
}

func (im *importer) del(ctx context.Context, project string, ek *engine.Key) bool {
	ev := im.event(admin.Event{Action: admin.ActionKeyDeleted, Project: project, KID: ek.KID})
	err := im.s.v.DeleteKey(admin.WithEvent(ctx, ev), project, ek.KID)
	if errors.Is(err, engine.ErrKeyNotFound) {
		return true // gone already
	}
	if err != nil {
		im.s.log.Warn("jwks import: deleting a key failed", "project", project, "kid", ek.KID, "err", err.Error())
		return false
	}
	if !ev.Recorded {
		ev.Before = admin.KeySnapshot(ek)
	}
	im.s.finishAudit(ev)
	im.s.log.Info("jwks import: key retired (deleted)", "project", project, "kid", ek.KID)
	return true
}
