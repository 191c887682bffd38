package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// SigningKey is an RSA private key with the kid it is registered under.
type SigningKey struct {
	KID       string
	Private   *rsa.PrivateKey
	PublicPEM []byte // SPKI PEM of the public half
	Inactive  bool   // registered, then set inactive (for key_inactive tokens)
}

// Keyring holds the keys tokens are signed with: at least one active key,
// and an inactive one when the mix has key_inactive.
type Keyring struct {
	Project string
	Keys    []*SigningKey
}

// Active returns the active keys.
func (r *Keyring) Active() []*SigningKey {
	var out []*SigningKey
	for _, k := range r.Keys {
		if !k.Inactive {
			out = append(out, k)
		}
	}
	return out
}

// InactiveKey returns the first inactive key, or nil.
func (r *Keyring) InactiveKey() *SigningKey {
	for _, k := range r.Keys {
		if k.Inactive {
			return k
		}
	}
	return nil
}

// NewSigningKey wraps priv with a fresh kid ("lg-" and 16 hex digits).
func NewSigningKey(priv *rsa.PrivateKey) *SigningKey {
	var b [8]byte
	_, _ = rand.Read(b[:])
	priv.Precompute()
	return &SigningKey{KID: GeneratedKIDPrefix + hex.EncodeToString(b[:]), Private: priv, PublicPEM: enginetest.PublicPEM(&priv.PublicKey)}
}

// MaxKeys bounds how many keys a keyring may hold.
const MaxKeys = 1000

// GenerateKeyring makes n active RSA keys of bits bits (and one inactive
// key more when withInactive), for project. RSA-2048 generation takes tens
// to hundreds of milliseconds per key.
func GenerateKeyring(project string, n, bits int, withInactive bool) (*Keyring, error) {
	if !engine.ValidProject(project) {
		return nil, fmt.Errorf("project %q does not match ^[a-z0-9][a-z0-9_-]{0,62}$", project)
	}
	if n < 1 || n > MaxKeys {
		return nil, fmt.Errorf("number of keys must be between 1 and %d", MaxKeys)
	}
	if bits < 2048 || bits > 4096 {
		return nil, errors.New("key size must be between 2048 and 4096 bits")
	}
	r := &Keyring{Project: project}
	total := n
	if withInactive {
		total++
	}
	for i := range total {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, err
		}
		k := NewSigningKey(priv)
		k.Inactive = i >= n
		r.Keys = append(r.Keys, k)
	}
	return r, nil
}

// LoadKeyring reads RSA private keys from PEM files (PKCS#8 or PKCS#1) as
// active keys; when withInactive, one more key is generated to be inactive.
func LoadKeyring(project string, paths []string, withInactive bool) (*Keyring, error) {
	if !engine.ValidProject(project) {
		return nil, fmt.Errorf("project %q does not match ^[a-z0-9][a-z0-9_-]{0,62}$", project)
	}
	if len(paths) == 0 || len(paths) > MaxKeys {
		return nil, fmt.Errorf("give between 1 and %d key files", MaxKeys)
	}
	r := &Keyring{Project: project}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		priv, err := enginetest.ParsePrivatePEM(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		r.Keys = append(r.Keys, NewSigningKey(priv))
	}
	if withInactive {
		priv, err := rsa.GenerateKey(rand.Reader, r.Keys[0].Private.N.BitLen())
		if err != nil {
			return nil, err
		}
		k := NewSigningKey(priv)
		k.Inactive = true
		r.Keys = append(r.Keys, k)
	}
	return r, nil
}

// MemoryStore returns an engine.MemoryStore holding the keyring's public
// keys with their statuses: what RegisterKeyring makes a server hold. Tests
// verify minted tokens against it.
func (r *Keyring) MemoryStore(ctx context.Context) (*engine.MemoryStore, error) {
	s := engine.NewMemoryStore()
	now := time.Now()
	for _, k := range r.Keys {
		st := engine.StatusActive
		if k.Inactive {
			st = engine.StatusInactive
		}
		err := s.Create(ctx, &engine.Key{KID: k.KID, Project: r.Project, Label: "loadgen", Status: st,
			Public: &k.Private.PublicKey, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Admin is a client of jwtgate's admin API.
type Admin struct {
	URL    string // e.g. http://127.0.0.1:8081
	Token  string // admin bearer token
	Client *http.Client
	// AllowRemote permits a non-loopback URL (see CheckLoopbackURL).
	AllowRemote bool
}

func (a *Admin) do(ctx context.Context, method, path string, body any, want int) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Content-Type", "application/json")
	c := a.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// RegisterKeyring registers every key's public half under its kid with the
// admin API (POST /v1/projects/{project}/keys), then sets the inactive ones
// inactive (PATCH). The private keys never leave this process.
func RegisterKeyring(ctx context.Context, a *Admin, r *Keyring) error {
	if !a.AllowRemote {
		if err := CheckLoopbackURL(a.URL); err != nil {
			return err
		}
	}
	base := "/v1/projects/" + r.Project + "/keys"
	for _, k := range r.Keys {
		body := map[string]string{"public_key": string(k.PublicPEM), "label": "loadgen", "kid": k.KID}
		if err := a.do(ctx, http.MethodPost, base, body, http.StatusCreated); err != nil {
			return fmt.Errorf("register key %s: %w", k.KID, err)
		}
		if k.Inactive {
			if err := a.do(ctx, http.MethodPatch, base+"/"+k.KID, map[string]string{"status": "inactive"}, http.StatusOK); err != nil {
				return fmt.Errorf("set key %s inactive: %w", k.KID, err)
			}
		}
	}
	return nil
}

// GeneratedKIDPrefix starts every kid NewSigningKey makes: the keys a
// loadgen run registered, which UnregisterKeys may delete.
const GeneratedKIDPrefix = "lg-"

// UnregisterKeys deletes from project, through the admin API, every kid
// that starts with GeneratedKIDPrefix (others are never touched: they are
// the user's own keys, named with --kid). A kid already gone counts as
// deleted. The keys were just used by the run, so the server's rotation
// guardrail (a key that verified a token within the max TTL) is
// overridden with ?force=true: they are loadgen's own test keys. It
// returns the kids it deleted.
func UnregisterKeys(ctx context.Context, a *Admin, project string, kids []string) ([]string, error) {
	if !a.AllowRemote {
		if err := CheckLoopbackURL(a.URL); err != nil {
			return nil, err
		}
	}
	var done []string
	for _, kid := range kids {
		if !strings.HasPrefix(kid, GeneratedKIDPrefix) || !engine.ValidKID(kid) {
			continue
		}
		err := a.do(ctx, http.MethodDelete, "/v1/projects/"+project+"/keys/"+kid+"?force=true", nil, http.StatusNoContent)
		if err != nil && !strings.Contains(err.Error(), "HTTP 404") {
			return done, fmt.Errorf("delete key %s: %w", kid, err)
		}
		done = append(done, kid)
	}
	return done, nil
}
