// Package admin holds the records of jwtgate's key lifecycle that stores
// keep beside the keys: the audit trail of admin changes and the scoped
// admin tokens. The durable stores (store/boltstore, store/pgstore)
// implement AuditStore and TokenStore; store/storetest checks them the same
// way.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/engine"
)

// Audit actions. The set is fixed: stores and filters accept only these.
const (
	ActionKeyCreated   = "key.created"   // POST /v1/projects/{p}/keys
	ActionKeyGenerated = "key.generated" // a key pair made by the server
	ActionKeyImported  = "key.imported"  // a key taken from a JWKS URL (actor "system")
	ActionKeyUpdated   = "key.updated"   // PATCH (label and/or status)
	ActionKeyDeleted   = "key.deleted"   // DELETE
	ActionTokenCreated = "token.created" // POST /v1/tokens
	ActionTokenRevoked = "token.revoked" // DELETE /v1/tokens/{id}
	// A project's JWKS source set or changed (PUT) and removed (DELETE).
	ActionJWKSSourceSet     = "jwks_source.set"
	ActionJWKSSourceDeleted = "jwks_source.deleted"
)

// Actions lists every audit action.
var Actions = []string{
	ActionKeyCreated, ActionKeyGenerated, ActionKeyImported, ActionKeyUpdated,
	ActionKeyDeleted, ActionTokenCreated, ActionTokenRevoked,
	ActionJWKSSourceSet, ActionJWKSSourceDeleted,
}

// ValidAction reports whether a is one of Actions.
func ValidAction(a string) bool {
	for _, x := range Actions {
		if x == a {
			return true
		}
	}
	return false
}

// Actor types: who made a change.
const (
	ActorRoot   = "root"   // the root admin token (ActorID empty)
	ActorToken  = "token"  // a scoped admin token (ActorID is its id, never its secret)
	ActorSystem = "system" // the server itself, e.g. a JWKS import (ActorID names the job)
)

// Event is one audit record.
type Event struct {
	// ID is assigned by the store on Append: increasing, unique, never
	// reused. It is the pagination cursor.
	ID        int64
	Time      time.Time
	ActorType string
	ActorID   string
	Action    string
	Project   string
	KID       string // the key concerned, if any
	TokenID   string // the admin token concerned (token.* actions)
	// Forced is set when ?force=true overrode the rotation guardrail.
	Forced bool
	// Before and After are JSON objects (a key or token object, never a
	// secret), or nil for "did not exist".
	Before, After json.RawMessage

	// Recorded is set by a store that wrote the event in the transaction
	// of the key change it describes (see WithEvent). Not stored.
	Recorded bool
}

type eventKey struct{}

// WithEvent returns ctx carrying e, the audit event of the key change about
// to be made with ctx (KeyStore Create, Update or Delete). A store that
// supports it writes e in the same transaction as the change, with Before
// and After taken from the key as it was and became inside that
// transaction, sets e.ID and e.Recorded, and makes the change fail if the
// event cannot be written: the change and its record are durable together
// or not at all. A store that does not leaves e.Recorded false, and the
// caller appends e itself.
func WithEvent(ctx context.Context, e *Event) context.Context {
	return context.WithValue(ctx, eventKey{}, e)
}

// EventFrom returns the event WithEvent put in ctx, or nil.
func EventFrom(ctx context.Context) *Event {
	e, _ := ctx.Value(eventKey{}).(*Event)
	return e
}

// AuditFilter selects events. Zero fields do not filter. Events come newest
// first (ID descending); Before, when not 0, keeps only IDs below it (the
// cursor of the next page). Limit must be between 1 and MaxAuditLimit.
type AuditFilter struct {
	Project, KID, Action string
	Since, Until         time.Time // Since <= Time < Until
	Before               int64
	Limit                int
}

// Audit page bounds.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditStore keeps the audit trail durably (on disk before Append returns).
type AuditStore interface {
	// AppendAudit stores e, setting e.ID.
	AppendAudit(ctx context.Context, e *Event) error
	// ListAudit returns the events matching f, newest first, at most
	// f.Limit of them.
	ListAudit(ctx context.Context, f AuditFilter) ([]*Event, error)
}

// Token scopes.
const (
	ScopeRead  = "read"  // GET on the project's keys
	ScopeWrite = "write" // read, plus add, update, delete its keys
)

// ValidScope reports whether s is ScopeRead or ScopeWrite.
func ValidScope(s string) bool { return s == ScopeRead || s == ScopeWrite }

// Token is a scoped admin token as stored: its secret is never kept, only
// the SHA-256 of it.
type Token struct {
	ID        string
	Project   string
	Scope     string
	Label     string
	Hash      [sha256.Size]byte
	CreatedAt time.Time
	RevokedAt time.Time // zero while the token is valid
}

// Clone returns a copy of t.
func (t *Token) Clone() *Token { c := *t; return &c }

// Errors of TokenStore.
var (
	ErrTokenNotFound = errors.New("admin token not found")
	ErrTokenExists   = errors.New("admin token id or hash already exists")
)

// TokenStore keeps scoped admin tokens.
type TokenStore interface {
	// CreateToken stores t (durably); ErrTokenExists if its ID or Hash is
	// taken.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash returns the token, revoked or not, whose secret hashes to
	// h; ErrTokenNotFound if none.
	TokenByHash(ctx context.Context, h [sha256.Size]byte) (*Token, error)
	// ListTokens returns the tokens of project ("" for all), oldest first
	// (CreatedAt, then ID), revoked ones included.
	ListTokens(ctx context.Context, project string) ([]*Token, error)
	// RevokeToken sets RevokedAt to now and returns the token as it was
	// before; ErrTokenNotFound if the id is unknown or already revoked.
	RevokeToken(ctx context.Context, id string, now time.Time) (*Token, error)
}

// Secret format: the prefix makes a leaked token recognisable (secret
// scanners) and lets the server skip the store for anything else.
const (
	SecretPrefix = "jgt_"
	secretRaw    = 32 // bytes of randomness: 256 bits
	// SecretLen is the length of a token secret.
	SecretLen = len(SecretPrefix) + (secretRaw*8+5)/6
	idPrefix  = "tok_"
)

// NewToken makes a token for project and scope: its record (with the hash)
// and its secret, to be shown once.
func NewToken(project, scope, label string, now time.Time) (*Token, string) {
	var raw [secretRaw]byte
	var id [8]byte
	rand.Read(raw[:]) // never fails (crypto/rand since Go 1.24)
	rand.Read(id[:])
	secret := SecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	return &Token{
		ID: idPrefix + hex.EncodeToString(id[:]), Project: project, Scope: scope, Label: label,
		Hash: HashSecret(secret), CreatedAt: now.UTC().Truncate(time.Microsecond),
	}, secret
}

// HashSecret is what stores keep of a token secret: its SHA-256. A token is
// 256 random bits, so a fast hash is safe (no guessing can succeed) and
// lets the token be found by its hash.
func HashSecret(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// LooksLikeSecret reports whether s has the shape of a token secret.
func LooksLikeSecret(s string) bool {
	if len(s) != SecretLen || !strings.HasPrefix(s, SecretPrefix) {
		return false
	}
	for i := len(SecretPrefix); i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// HashEqual compares two hashes in constant time.
func HashEqual(a, b [sha256.Size]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// ValidTokenID reports whether id has the shape NewToken gives.
func ValidTokenID(id string) bool {
	if len(id) != len(idPrefix)+16 || !strings.HasPrefix(id, idPrefix) {
		return false
	}
	_, err := hex.DecodeString(id[len(idPrefix):])
	return err == nil && strings.ToLower(id) == id
}

// MaxLabelLength bounds a token's label.
const MaxLabelLength = engine.MaxLabelLength

// KeySnapshot is the audit record's view of a key: what an admin change can
// alter, without usage counters.
func KeySnapshot(k *engine.Key) json.RawMessage {
	if k == nil {
		return nil
	}
	b, _ := json.Marshal(struct {
		KID        string `json:"kid"`
		Project    string `json:"project"`
		Label      string `json:"label"`
		Status     string `json:"status"`
		Bits       int    `json:"bits"`
		Thumbprint string `json:"thumbprint"`
	}{k.KID, k.Project, k.Label, string(k.Status), k.Bits(), k.Thumbprint()})
	return b
}

// SetKeyChange sets e's Before and After to the key as it was and became
// (nil: did not exist), and its KID when not set yet (a kid the server
// made).
func SetKeyChange(e *Event, before, after *engine.Key) {
	e.Before, e.After = KeySnapshot(before), KeySnapshot(after)
	if e.KID == "" {
		if after != nil {
			e.KID = after.KID
		} else if before != nil {
			e.KID = before.KID
		}
	}
}

// TokenObject is the API view of a token (never its secret or hash).
type TokenObject struct {
	ID        string  `json:"id"`
	Project   string  `json:"project"`
	Scope     string  `json:"scope"`
	Label     string  `json:"label"`
	CreatedAt string  `json:"created_at"`
	RevokedAt *string `json:"revoked_at"`
}

// Object returns the API view of t.
func (t *Token) Object() TokenObject {
	o := TokenObject{ID: t.ID, Project: t.Project, Scope: t.Scope, Label: t.Label, CreatedAt: t.CreatedAt.UTC().Format(time.RFC3339)}
	if !t.RevokedAt.IsZero() {
		r := t.RevokedAt.UTC().Format(time.RFC3339)
		o.RevokedAt = &r
	}
	return o
}

// TokenSnapshot is the audit record's view of a token.
func TokenSnapshot(t *Token) json.RawMessage {
	if t == nil {
		return nil
	}
	b, _ := json.Marshal(t.Object())
	return b
}

// SortTokens orders tokens oldest first (CreatedAt, then ID), the order
// ListTokens promises.
func SortTokens(ts []*Token) {
	slices.SortFunc(ts, func(a, b *Token) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
