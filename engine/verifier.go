package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"
)

// ErrUnavailable is returned by Verify when the key store could not be
// asked about a kid that is not cached (it failed or timed out). It is not a
// verdict on the token: the server answers it with 503, never with 401.
var ErrUnavailable = errors.New("jwtgate: key store unavailable")

// Verifier verifies RS256 JWTs against the keys of a KeyStore, under the
// rules of docs/API.md. It is immutable after New and safe for concurrent use;
// Verify allocates nothing on its common paths when given a reused Claims.
type Verifier struct {
	cfg      config
	store    KeyStore
	keys     *keyCache
	jwks     *jwksCache
	tokens   *tokenCache  // nil when off
	clock    *coarseClock // nil with WithClock
	clockOff atomic.Bool  // set by Close

	// freshUntil (unix nanos) is the time until which the store vouches
	// for the caches; past it verifies answer ErrUnavailable. 0: no bound.
	freshUntil atomic.Int64

	// requiredErrs holds, per required claim (cfg.required), the errors
	// that name it, made once in New.
	requiredErrs []requiredClaimErrors
}

// New returns a Verifier over store. Every option is validated here; a bad
// option is an error, never a panic later.
func New(store KeyStore, opts ...Option) (*Verifier, error) {
	if store == nil {
		return nil, errors.New("jwtgate: nil key store")
	}
	cfg := config{
		leeway:         int64(DefaultLeeway / time.Second),
		maxTTL:         int64(DefaultMaxTTL / time.Second),
		keyCacheSize:   DefaultKeyCacheSize,
		keyCacheBytes:  DefaultKeyCacheBytes,
		tokenCacheSize: DefaultTokenCacheSize,
		tokenCacheMem:  DefaultTokenCacheBytes,
		negCacheSize:   DefaultNegativeCacheSize,
		negTTL:         DefaultNegativeTTL,
		storeTimeout:   DefaultStoreTimeout,
		maxTokenBytes:  DefaultMaxTokenBytes,
		now:            time.Now,
		policy:         KeyPolicy{}.withDefaults(),
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, errors.New("jwtgate: " + err.Error())
		}
	}
	v := &Verifier{
		cfg:    cfg,
		store:  store,
		keys:   newKeyCache(store, cfg.keyCacheSize, cfg.keyCacheBytes, cfg.negCacheSize, cfg.negTTL, cfg.storeTimeout),
		jwks:   newJWKSCache(),
		tokens: newTokenCache(cfg.tokenCacheSize, cfg.tokenCacheMem),
	}
	for _, name := range cfg.required {
		v.requiredErrs = append(v.requiredErrs, newRequiredClaimErrors(name))
	}
	attachClock(v, !cfg.customClock)
	// A Verifier dropped without Close stops retrying registry loads too.
	runtime.AddCleanup(v, func(r *registry) { r.closed.Store(true) }, &v.keys.reg)
	// Listen to the store's changes before loading the registry index, so
	// that nothing committed after the load's snapshot is missed. A feed
	// calls InvalidateAll when given the Verifier, which starts the load.
	if feed, ok := store.(ChangeFeed); ok {
		feed.SetInvalidator(v)
	}
	v.keys.reg.start()
	return v, nil
}

// Verify verifies token and returns its identity in a new Claims. It is the
// convenient form; hot paths use VerifyInto with a reused Claims.
func (v *Verifier) Verify(token []byte) (*Claims, error) {
	c := new(Claims)
	if err := v.verify(token, nil, c); err != nil {
		return nil, err
	}
	return c, nil
}

// VerifyInto verifies token and, on success, fills c (which it resets
// first). The token bytes are not retained. On failure the error is one of
// the Err… sentinels (or ErrUnavailable) and c holds nothing useful.
func (v *Verifier) VerifyInto(token []byte, c *Claims) error {
	return v.verify(token, nil, c)
}

// VerifyForProject is VerifyInto that also requires the key's project to be
// project (ErrAudienceMismatch otherwise). An empty project means any.
func (v *Verifier) VerifyForProject(token, project []byte, c *Claims) error {
	if len(project) == 0 {
		project = nil
	}
	return v.verify(token, project, c)
}

type parseState struct {
	hdr []byte
	hp  jsonParser
	pp  jsonParser
	buf []byte // unescaped header values
	sig []byte
}

var statePool = sync.Pool{New: func() any {
	return &parseState{buf: make([]byte, 0, 256), sig: make([]byte, 512)}
}}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, max(n, 1024))
	}
	return b[:n]
}

func (v *Verifier) verify(token, project []byte, c *Claims) error {
	c.Reset()
	if len(token) == 0 {
		return ErrMissingToken
	}
	if len(token) > v.cfg.maxTokenBytes {
		return ErrTokenTooLarge
	}
	stripe := callerStripe(c)
	nowNano := v.nowNanos()
	nowSec := nowNano / int64(time.Second)
	if fu := v.freshUntil.Load(); fu != 0 && nowNano > fu {
		return ErrUnavailable // the store cannot vouch for what is cached
	}

	var th uint64
	if v.tokens != nil {
		var e *tokenEntry
		e, th = v.tokens.get(token)
		if e != nil && !e.key.revoked.Load() && e.exp > nowSec-v.cfg.leeway &&
			(project == nil || string(project) == e.key.project) {
			c.Project, c.KID = e.key.project, e.key.kid
			c.Expires, c.IssuedAt, c.NotBefore = e.exp, e.iat, e.nbf
			c.payload = append(c.payload[:0], e.payload...)
			c.members = append(c.members[:0], e.members...)
			if e.hasSub {
				c.subject = stringValue(c.payload, e.subject, c.subBuf[:0])
				if e.subject.valEsc {
					c.subBuf = c.subject
				}
			}
			e.key.used(nowSec, stripe)
			if e.key.revoked.Load() { // evicted since the check above: keep its count
				v.keys.salvage(e.key)
			}
			v.tokens.count(true, stripe)
			return nil
		}
		v.tokens.count(false, stripe)
	}

	// Rule 1: shape, strict base64url, strict JSON.
	d1 := bytes.IndexByte(token, '.')
	if d1 <= 0 {
		return ErrMalformed
	}
	rest := token[d1+1:]
	d2 := bytes.IndexByte(rest, '.')
	if d2 <= 0 {
		return ErrMalformed
	}
	h64, p64, s64 := token[:d1], rest[:d2], rest[d2+1:]
	if len(s64) == 0 || bytes.IndexByte(s64, '.') >= 0 {
		return ErrMalformed
	}
	if !isB64URL(s64) {
		return ErrMalformed
	}
	signingInput := token[:d1+1+d2]

	st := statePool.Get().(*parseState)
	defer statePool.Put(st)
	st.hdr = grow(st.hdr, base64.RawURLEncoding.DecodedLen(len(h64)))
	n, ok := b64Decode(st.hdr, h64)
	if !ok {
		return ErrMalformed
	}
	hdr := st.hdr[:n]
	if st.hp.parse(hdr) != nil {
		return ErrMalformed
	}
	c.payload = grow(c.payload, base64.RawURLEncoding.DecodedLen(len(p64)))
	if n, ok = b64Decode(c.payload, p64); !ok {
		return ErrMalformed
	}
	c.payload = c.payload[:n]
	st.pp.top = c.members[:0]
	err := st.pp.parse(c.payload)
	c.members, st.pp.top = st.pp.top, nil
	if err != nil {
		return ErrMalformed
	}

	// Rule 2: algorithm and header parameters.
	var hf headerFields
	hf.scan(hdr, st.hp.top)
	m := hf.alg
	if !hf.has(fAlg) || m.kind != kindString || string(stringValue(hdr, m, st.buf)) != "RS256" {
		return ErrUnsupportedAlgorithm
	}
	if hf.has(fCrit) {
		return ErrUnsupportedHeader
	}
	if hf.has(fTyp) {
		if hf.typ.kind != kindString {
			return ErrUnsupportedHeader
		}
		typ := stringValue(hdr, hf.typ, st.buf)
		if !bytes.EqualFold(typ, []byte("JWT")) && !bytes.EqualFold(typ, []byte("application/jwt")) {
			return ErrUnsupportedHeader
		}
	}
	if hf.has(fCty) {
		return ErrUnsupportedHeader
	}

	// Rule 3: the key.
	if !hf.has(fKid) {
		return ErrMissingKID
	}
	m = hf.kid
	if m.kind != kindString {
		return ErrMalformed
	}
	kid := stringValue(hdr, m, st.buf)
	if m.valEsc {
		st.buf = kid[:0]
	}
	if !validKIDBytes(kid) {
		return ErrUnknownKID
	}
	ke, err := v.keys.get(kid, nowNano)
	if err != nil {
		return ErrUnavailable
	}
	if ke == nil {
		return ErrUnknownKID
	}
	if !ke.active {
		return ErrKeyInactive
	}

	// Rule 4: claims.
	pl, pm := c.payload, c.members
	var pf payloadFields
	pf.scan(pl, pm)
	if !pf.has(fExp) {
		return ErrMissingExp
	}
	if !pf.has(fIat) {
		return ErrMissingIat
	}
	expF, expC, ok1 := numericDate(pl, pf.exp)
	iatF, iatC, ok2 := numericDate(pl, pf.iat)
	if !ok1 || !ok2 {
		return ErrMalformed
	}
	var nbfC int64
	hasNbf := pf.has(fNbf)
	if hasNbf {
		var ok bool
		if _, nbfC, ok = numericDate(pl, pf.nbf); !ok {
			return ErrMalformed
		}
	}
	audM, hasAud := pf.aud, pf.has(fAud)
	if hasAud && !validAudience(pl, audM) {
		return ErrMalformed
	}
	subM, hasSub := pf.sub, pf.has(fSub)
	if pf.nonString {
		return ErrMalformed
	}
	leeway := v.cfg.leeway
	if expF <= nowSec-leeway {
		return ErrExpired
	}
	if (hasNbf && nbfC > nowSec+leeway) || iatC > nowSec+leeway {
		// The coarse clock may be a tick (on a loaded machine, more)
		// behind: read the exact time before refusing a token as being
		// from the future. Only such tokens pay for it.
		nowSec = v.cfg.now().Unix()
	}
	if hasNbf && nbfC > nowSec+leeway {
		return ErrNotYetValid
	}
	if iatC > nowSec+leeway {
		return ErrIssuedInFuture
	}
	if expC-iatF > v.cfg.maxTTL {
		return ErrTTLExceeded
	}
	if !hasAud || !audienceContains(pl, audM, ke.project) {
		return ErrAudienceMismatch
	}
	if project != nil && string(project) != ke.project {
		return ErrAudienceMismatch
	}
	for i, name := range v.cfg.required {
		m, ok := findMember(pl, pm, name)
		if !ok {
			return v.requiredErrs[i].absent
		}
		if m.kind != kindString || m.valEnd == m.valStart {
			return v.requiredErrs[i].notString
		}
	}

	// Rule 5: the signature, exactly the modulus size, under the kid's key.
	if len(s64) != ke.sigB64Len {
		return ErrInvalidSignature
	}
	st.sig = grow(st.sig, ke.sigLen+2)
	if n, ok := b64Decode(st.sig, s64); !ok || n != ke.sigLen {
		return ErrInvalidSignature
	}
	digest := sha256.Sum256(signingInput)
	if !ke.sig.verify(&digest, st.sig[:ke.sigLen]) {
		return ErrInvalidSignature
	}

	c.Project, c.KID = ke.project, ke.kid
	c.Expires, c.IssuedAt = expF, iatF
	if hasNbf {
		c.NotBefore = nbfC
	}
	if hasSub {
		c.subject = stringValue(pl, subM, c.subBuf[:0])
		if subM.valEsc {
			c.subBuf = c.subject
		}
	}
	ke.used(nowSec, stripe)
	if ke.revoked.Load() { // not in the key cache: keep its count (rare)
		v.keys.salvage(ke)
	}
	if v.tokens != nil {
		v.tokens.put(th, &tokenEntry{
			token:   bytes.Clone(token),
			key:     ke,
			payload: bytes.Clone(pl),
			members: append([]member(nil), pm...),
			subject: subM, hasSub: hasSub,
			exp: expF, iat: iatF, nbf: c.NotBefore,
		})
	}
	return nil
}

// numericDate reads a NumericDate: a JSON number from 0 to 2^53, fractions
// allowed; it returns the floor and the ceiling so that each rule can round
// to its stricter side. The range is checked on the exact decimal value, not
// on a float64 rounding of it: 9007199254740993.0 is out of range like
// 9007199254740993, though both round to 2^53 as a float64.
func numericDate(doc []byte, m member) (floor, ceil int64, ok bool) {
	if m.kind != kindNumber {
		return 0, 0, false
	}
	b := doc[m.valStart:m.valEnd]
	if len(b) <= 16 {
		var v int64
		i := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			v = v*10 + int64(b[i]-'0')
		}
		if i == len(b) {
			return v, v, v <= maxNumericDate
		}
	}
	return decimalDate(b)
}

// maxNumericDate is the largest NumericDate accepted: 2^53.
const maxNumericDate = 1 << 53

// decimalDate reads a JSON number (already validated by the parser) exactly:
// its digits and decimal exponent, without a float64 in between.
func decimalDate(b []byte) (floor, ceil int64, ok bool) {
	if len(b) == 0 || b[0] == '-' {
		return 0, 0, false
	}
	// Mantissa: the significant digits (leading zeros dropped, at most
	// len(digits) kept) and exp10, the power of ten they are scaled by.
	var digits [24]byte
	nd, exp10, i := 0, 0, 0
	sawFrac, tail := false, false // tail: a non-zero digit beyond those kept
	for ; i < len(b); i++ {
		c := b[i]
		if c == '.' {
			sawFrac = true
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		if sawFrac {
			exp10--
		}
		switch {
		case nd == 0 && c == '0':
		case nd < len(digits):
			digits[nd] = c
			nd++
		default: // not kept: an integer digit scales the value up by ten
			exp10++
			tail = tail || c != '0'
		}
	}
	if i < len(b) { // exponent
		i++ // 'e' or 'E'
		neg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			neg = b[i] == '-'
			i++
		}
		e := 0
		for ; i < len(b); i++ {
			if e < 1_000_000 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if neg {
			e = -e
		}
		exp10 += e
	}
	// Drop trailing zeros of the kept digits (they only scale).
	for nd > 0 && digits[nd-1] == '0' {
		nd--
		exp10++
	}
	if nd == 0 {
		return 0, 0, true // zero, however spelled
	}
	intDigits := nd + exp10 // digits before the decimal point
	if intDigits > 16 {     // 2^53 has 16 digits
		return 0, 0, false
	}
	if intDigits <= 0 {
		return 0, 1, true // 0 < value < 1
	}
	var ip int64
	for j := 0; j < intDigits; j++ {
		d := int64(0)
		if j < nd {
			d = int64(digits[j] - '0')
		}
		ip = ip*10 + d
	}
	frac := intDigits < nd || tail
	if ip > maxNumericDate || ip == maxNumericDate && frac {
		return 0, 0, false
	}
	if frac {
		return ip, ip + 1, true
	}
	return ip, ip, true
}

// validAudience: a string, or a non-empty array of strings.
func validAudience(doc []byte, m member) bool {
	switch m.kind {
	case kindString:
		return true
	case kindArray:
		n := 0
		ok := eachArrayString(doc[m.valStart:m.valEnd], func([]byte, bool) bool { n++; return true })
		return ok && n > 0
	}
	return false
}

func audienceContains(doc []byte, m member, project string) bool {
	if m.kind == kindString {
		return equalUnescaped(doc[m.valStart:m.valEnd], m.valEsc, project)
	}
	found := false
	eachArrayString(doc[m.valStart:m.valEnd], func(raw []byte, esc bool) bool {
		if equalUnescaped(raw, esc, project) {
			found = true
			return false
		}
		return true
	})
	return found
}

func equalUnescaped(raw []byte, esc bool, s string) bool {
	if !esc {
		return string(raw) == s
	}
	var buf [128]byte
	return string(appendUnescaped(buf[:0], raw)) == s
}

// eachArrayString walks a validated JSON array and calls fn with the raw
// body of each element that is a string; it returns false if an element is
// not a string. fn returns false to stop early.
func eachArrayString(arr []byte, fn func(raw []byte, esc bool) bool) bool {
	i := 1 // past '['
	for i < len(arr) {
		switch arr[i] {
		case ' ', '\t', '\n', '\r', ',':
			i++
			continue
		case ']':
			return true
		case '"':
		default:
			return false
		}
		start := i + 1
		esc := false
		j := start
		for ; j < len(arr); j++ {
			if arr[j] == '\\' {
				esc = true
				j++
				continue
			}
			if arr[j] == '"' {
				break
			}
		}
		if !fn(arr[start:j], esc) {
			return true
		}
		i = j + 1
	}
	return true
}

// Invalidate drops everything cached about kid: the parsed key, a negative
// entry, and (through the key's revocation) every cached token it verified.
// A store that learns of a change made elsewhere calls it; verifies that
// start after it returns see the store's current state.
func (v *Verifier) Invalidate(kid string) { v.keys.invalidate(kid, "") }

// InvalidateAll drops every cached key, unknown kid and token: for a store
// that cannot know what it missed (e.g. after a lost connection).
func (v *Verifier) InvalidateAll() {
	v.keys.invalidateAll()
	if v.tokens != nil {
		v.tokens.purge()
	}
}

// SetFreshUntil bounds staleness: verifies that start after t answer
// ErrUnavailable (a 503, never a verdict) until it is moved forward. A store
// shared by several nodes calls it each time it has confirmed that it has
// seen every key change (t = when that check began + the allowed
// staleness); the zero time removes the bound.
func (v *Verifier) SetFreshUntil(t time.Time) {
	if t.IsZero() {
		v.freshUntil.Store(0)
		return
	}
	v.freshUntil.Store(t.UnixNano())
}

// Stale reports whether the bound of SetFreshUntil has passed: verifies
// are refused with ErrUnavailable.
func (v *Verifier) Stale() bool {
	fu := v.freshUntil.Load()
	return fu != 0 && v.nowNanos() > fu
}

// Stats returns the cache counters.
func (v *Verifier) Stats() CacheStats {
	var s CacheStats
	v.keys.stats(&s)
	if v.tokens != nil {
		v.tokens.stats(&s)
	}
	return s
}

// Store returns the key store the Verifier reads.
func (v *Verifier) Store() KeyStore { return v.store }

// KeyPolicy returns the key policy AddKey enforces.
func (v *Verifier) KeyPolicy() KeyPolicy { return v.cfg.policy }

// MaxTokenBytes returns the configured token size limit.
func (v *Verifier) MaxTokenBytes() int { return v.cfg.maxTokenBytes }

// DetailedErrors returns every error with a Detail this Verifier can
// return (ErrMissingExp, ErrMissingIat, and two per required claim), so
// that a server can prepare one response per error instead of formatting
// one per request.
func (v *Verifier) DetailedErrors() []*Error {
	out := []*Error{ErrMissingExp, ErrMissingIat}
	for _, r := range v.requiredErrs {
		out = append(out, r.absent, r.notString)
	}
	return out
}

// MaxTTL returns the longest token lifetime (exp - iat) accepted.
func (v *Verifier) MaxTTL() time.Duration { return time.Duration(v.cfg.maxTTL) * time.Second }

// Leeway returns the clock skew tolerated on exp, nbf and iat.
func (v *Verifier) Leeway() time.Duration { return time.Duration(v.cfg.leeway) * time.Second }

// Now returns the Verifier's clock reading.
func (v *Verifier) Now() time.Time { return v.cfg.now() }

// MaxLabelLength bounds a key's label.
const MaxLabelLength = 256

func checkLabel(l string) error {
	labelErr := func(msg string) error { return &KeyError{Msg: msg, Err: ErrInvalidLabel} }
	if len(l) > MaxLabelLength {
		return labelErr("label is " + strconv.Itoa(len(l)) + " bytes, longer than the limit of " + strconv.Itoa(MaxLabelLength))
	}
	if !utf8.ValidString(l) {
		return labelErr("label must be valid UTF-8")
	}
	for _, r := range l {
		if r < 0x20 || r == 0x7F {
			return labelErr("label must not contain control characters (newline, tab, ...)")
		}
	}
	return nil
}

// AddKey registers k (Project, Public, Label and optionally KID) in the
// store: it checks the project ID, the kid pattern (a new kid is made when
// empty) and the key policy, sets the status to active and the times, and
// makes the kid usable at once (clearing any negative cache entry). The
// stored key is returned. Errors: ErrInvalidKey (wrapped, with a message for
// the user) and ErrKIDTaken, or the store's error.
func (v *Verifier) AddKey(ctx context.Context, k *Key) (*Key, error) {
	if k == nil {
		return nil, keyErr("no key given")
	}
	if !ValidProject(k.Project) {
		return nil, keyErr("project must match ^[a-z0-9][a-z0-9_-]{0,62}$")
	}
	nk := &Key{KID: k.KID, Project: k.Project, Label: k.Label, Public: k.Public, Status: StatusActive}
	if nk.KID == "" {
		nk.KID = NewKID()
	} else if !ValidKID(nk.KID) {
		return nil, keyErr(`kid must match ^[A-Za-z0-9._-]{1,128}$ and not be "." or ".."`)
	}
	if err := checkLabel(nk.Label); err != nil {
		return nil, err
	}
	if err := CheckPublicKey(nk.Public, v.cfg.policy); err != nil {
		return nil, err
	}
	now := v.cfg.now().UTC().Truncate(time.Microsecond)
	nk.CreatedAt, nk.UpdatedAt = now, now
	if err := v.store.Create(ctx, nk); err != nil {
		return nil, err
	}
	v.keys.invalidate(nk.KID, nk.Project)
	return nk.Clone(), nil
}

// UpdateKey changes a key's label and/or status. When it returns, no verify
// that starts afterwards uses the old state: a deactivated key's cached
// tokens no longer verify.
func (v *Verifier) UpdateKey(ctx context.Context, project, kid string, u KeyUpdate) (*Key, error) {
	if u.Label != nil {
		if err := checkLabel(*u.Label); err != nil {
			return nil, err
		}
	}
	if u.Status != nil && !u.Status.Valid() {
		return nil, keyErr(`status must be "active" or "inactive"`)
	}
	k, err := v.store.Update(ctx, project, kid, u, v.cfg.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return nil, err
	}
	v.keys.invalidate(kid, k.Project)
	v.addPending(k)
	return k, nil
}

// DeleteKey removes a key; when it returns, its tokens no longer verify.
func (v *Verifier) DeleteKey(ctx context.Context, project, kid string) error {
	if err := v.store.Delete(ctx, project, kid); err != nil {
		return err
	}
	v.keys.forget(kid)
	return nil
}

// GetKey returns the project's key (ErrKeyNotFound when the kid is unknown or
// another project's), with usage not yet flushed to the store added in.
func (v *Verifier) GetKey(ctx context.Context, project, kid string) (*Key, error) {
	k, err := v.store.Get(ctx, kid)
	if err != nil {
		return nil, err
	}
	if k.Project != project {
		return nil, ErrKeyNotFound
	}
	v.addPending(k)
	return k, nil
}

// ListKeys returns the project's keys, oldest first, with pending usage.
func (v *Verifier) ListKeys(ctx context.Context, project string) ([]*Key, error) {
	ks, err := v.store.List(ctx, project)
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		v.addPending(k)
	}
	return ks, nil
}

func (v *Verifier) addPending(k *Key) {
	n, last := v.keys.pendingUsage(k)
	ApplyUsage(k, Usage{Count: n, LastUsed: unixOrZero(last)})
}

func unixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// FlushUsage writes the usage counted since the last flush to the store, if
// it is a UsageRecorder. On a store error the counts are kept for the next
// flush.
func (v *Verifier) FlushUsage(ctx context.Context) error {
	rec, ok := v.store.(UsageRecorder)
	if !ok {
		return nil
	}
	batch := v.keys.drainUsage()
	if len(batch) == 0 {
		return nil
	}
	if err := rec.RecordUsage(ctx, batch); err != nil {
		v.keys.restoreUsage(batch)
		return err
	}
	return nil
}

// Field bits of the registered header parameters and claims.
const (
	fAlg = 1 << iota
	fCrit
	fTyp
	fCty
	fKid
	fExp
	fIat
	fNbf
	fAud
	fSub
)

// headerFields holds the header parameters the rules read, found in one
// pass over the members.
type headerFields struct {
	found         uint32
	alg, typ, kid member
}

func (f *headerFields) has(bit uint32) bool { return f.found&bit != 0 }

func (f *headerFields) scan(doc []byte, top []member) {
	var buf [64]byte
	for _, m := range top {
		switch string(memberName(doc, m, buf[:0])) {
		case "alg":
			f.found |= fAlg
			f.alg = m
		case "crit":
			f.found |= fCrit
		case "typ":
			f.found |= fTyp
			f.typ = m
		case "cty":
			f.found |= fCty
		case "kid":
			f.found |= fKid
			f.kid = m
		}
	}
}

// payloadFields holds the registered claims the rules read, found in one
// pass; nonString is set when sub, iss or jti is present but not a string.
type payloadFields struct {
	found                   uint32
	exp, iat, nbf, aud, sub member
	nonString               bool
}

func (f *payloadFields) has(bit uint32) bool { return f.found&bit != 0 }

func (f *payloadFields) scan(doc []byte, top []member) {
	var buf [64]byte
	for _, m := range top {
		switch string(memberName(doc, m, buf[:0])) {
		case "exp":
			f.found |= fExp
			f.exp = m
		case "iat":
			f.found |= fIat
			f.iat = m
		case "nbf":
			f.found |= fNbf
			f.nbf = m
		case "aud":
			f.found |= fAud
			f.aud = m
		case "sub":
			f.found |= fSub
			f.sub = m
			f.nonString = f.nonString || m.kind != kindString
		case "iss", "jti":
			f.nonString = f.nonString || m.kind != kindString
		}
	}
}

// memberName returns a member's unescaped name (in buf when escaped).
func memberName(doc []byte, m member, buf []byte) []byte {
	raw := doc[m.nameStart:m.nameEnd]
	if !m.nameEsc {
		return raw
	}
	return appendUnescaped(buf, raw)
}

// callerStripe picks the counter stripe for a verify from the address of
// the caller's Claims: each goroutine (or pool shard) reuses its own, so its
// counter writes stay on one cache line instead of bouncing between cores
// as a random stripe would.
func callerStripe(c *Claims) uint {
	return uint((uint64(uintptr(unsafe.Pointer(c))) >> 6) * 0x9E3779B97F4A7C15 >> 61)
}
