package engine

import (
	"errors"
	"strconv"
	"time"

	"github.com/jwtgate/jwtgate/engine/internal/rsaverify"
)

// Defaults of the Verifier's options. The CLI uses them as flag defaults.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultMaxTTL is the longest exp - iat accepted.
	DefaultMaxTTL = 600 * time.Second
	// DefaultMaxTokenBytes bounds the token (and the Authorization value).
	DefaultMaxTokenBytes = 8 << 10
	// DefaultKeyCacheSize bounds the number of prepared keys kept in the
	// key cache; 0 means no count bound (the byte bound applies).
	DefaultKeyCacheSize = 0
	// DefaultKeyCacheBytes bounds the memory of the prepared keys kept in
	// the key cache: room for about 100,000 2048-bit keys
	// (KeyCacheBytesFor). Past it the coldest keys are evicted, and their
	// next use reads them from the store again.
	DefaultKeyCacheBytes = 96 << 20
	// DefaultTokenCacheSize is the number of verified tokens remembered; 0
	// turns the token cache off.
	DefaultTokenCacheSize = 16_384
	// DefaultTokenCacheBytes bounds the memory of the token cache's entries
	// (each holds its token and decoded payload: 8 KiB tokens cost about
	// 14 KiB each, so 64 MiB holds some 4,600 of them).
	DefaultTokenCacheBytes = 64 << 20
	// MaxTokenCacheBytes is the largest token cache byte bound accepted.
	MaxTokenCacheBytes = 1 << 40
	// DefaultNegativeCacheSize bounds how many unknown kids are remembered.
	DefaultNegativeCacheSize = 65_536
	// DefaultNegativeTTL is how long an unknown kid is remembered when no
	// invalidation says otherwise.
	DefaultNegativeTTL = 2 * time.Second
	// DefaultStoreTimeout bounds one key lookup in the store.
	DefaultStoreTimeout = 2 * time.Second

	// MaxTokenBytesLimit is the largest --max-token-bytes accepted.
	MaxTokenBytesLimit = 64 << 10
)

type config struct {
	leeway         int64 // seconds
	maxTTL         int64 // seconds
	required       []string
	keyCacheSize   int
	keyCacheBytes  int
	tokenCacheSize int
	tokenCacheMem  int64
	negCacheSize   int
	negTTL         time.Duration
	storeTimeout   time.Duration
	maxTokenBytes  int
	now            func() time.Time
	customClock    bool
	policy         KeyPolicy
}

// Option configures a Verifier.
type Option func(*config) error

// WithLeeway sets the clock skew tolerated on exp, nbf and iat (RFC 7519
// 4.1.4 allows "some small leeway"; keep it small: every second of leeway is
// a second an expired token still opens the door). Default DefaultLeeway.
func WithLeeway(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || d > time.Hour || d%time.Second != 0 {
			return errors.New("leeway must be whole seconds between 0 and 1h")
		}
		c.leeway = int64(d / time.Second)
		return nil
	}
}

// WithMaxTTL sets the longest lifetime (exp - iat) a token may claim.
// Short-lived tokens bound the damage of a leaked token. Default DefaultMaxTTL.
func WithMaxTTL(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 || d > 24*time.Hour || d%time.Second != 0 {
			return errors.New("max TTL must be whole seconds between 1s and 24h")
		}
		c.maxTTL = int64(d / time.Second)
		return nil
	}
}

// WithRequiredClaims names claims that every token must carry as non-empty
// strings (e.g. tenant claims "groupRef", "consumerRef"); else missing_claim.
func WithRequiredClaims(names ...string) Option {
	return func(c *config) error {
		for _, n := range names {
			if n == "" || len(n) > 64 {
				return errors.New("required claim names must be 1 to 64 bytes")
			}
			switch n {
			case "exp", "iat", "nbf", "aud":
				return errors.New("claim " + strconv.Quote(n) + " is checked by its own rule and cannot be a required string claim")
			}
		}
		c.required = append([]string(nil), names...)
		return nil
	}
}

// WithKeyCacheSize bounds how many prepared keys the key cache holds, on
// top of its byte bound (WithKeyCacheBytes); 0 (the default) means no count
// bound.
func WithKeyCacheSize(n int) Option {
	return func(c *config) error {
		if n < 0 || n > 100_000_000 {
			return errors.New("key cache size must be between 0 (no count bound) and 100000000")
		}
		c.keyCacheSize = n
		return nil
	}
}

// MinKeyCacheBytes is the smallest key cache byte bound accepted.
const MinKeyCacheBytes = 64 << 10

// WithKeyCacheBytes bounds the memory the key cache may use for prepared
// keys (default DefaultKeyCacheBytes). Past it the coldest keys are
// evicted; their next use reads them from the store again.
func WithKeyCacheBytes(n int) Option {
	return func(c *config) error {
		if n < MinKeyCacheBytes || n > 1<<40 {
			return errors.New("key cache bytes must be between " + strconv.Itoa(MinKeyCacheBytes) + " and 1 TiB")
		}
		c.keyCacheBytes = n
		return nil
	}
}

// KeyCacheBytesFor returns the estimated key cache bytes that n prepared
// keys of the given modulus size take (for sizing WithKeyCacheBytes).
func KeyCacheBytesFor(n, bits int) int {
	return n * entrySize(&keyEntry{kid: "0123456789abcdefghijkl", project: "project-x", sigLen: (bits + 7) / 8, sig: sigKey{fast: new(rsaverify.PublicKey)}})
}

// KeyCacheKeysFor returns about how many prepared 2048-bit keys fit in a
// key cache of n bytes.
func KeyCacheKeysFor(n int) int { return n / typicalEntryBytes }

// WithTokenCacheSize sets how many verified tokens are remembered; 0 turns
// the cache off. A cached token is still checked for exp, and a key's
// deactivation or deletion invalidates its tokens at once.
func WithTokenCacheSize(n int) Option {
	return func(c *config) error {
		if n < 0 || n > 100_000_000 {
			return errors.New("token cache size must be between 0 and 100000000")
		}
		c.tokenCacheSize = n
		return nil
	}
}

// WithTokenCacheBytes bounds the memory of the token cache's entries (the
// cached tokens and their decoded payloads) in bytes; 0 turns the cache off.
// Both bounds hold: the cache keeps at most WithTokenCacheSize entries and
// at most n bytes of them, whichever is reached first. Default
// DefaultTokenCacheBytes.
func WithTokenCacheBytes(n int64) Option {
	return func(c *config) error {
		if n < 0 || n > MaxTokenCacheBytes {
			return errors.New("token cache bytes must be between 0 and " + strconv.FormatInt(MaxTokenCacheBytes, 10))
		}
		c.tokenCacheMem = n
		return nil
	}
}

// WithNegativeCache bounds the memory of unknown kids: at most size kids, each
// for at most ttl (a registration through the Verifier, or an Invalidate,
// clears an entry at once). It keeps floods of unknown kids off the store.
func WithNegativeCache(size int, ttl time.Duration) Option {
	return func(c *config) error {
		if size < 1 || ttl < 0 || ttl > time.Hour {
			return errors.New("negative cache size must be at least 1 and its ttl between 0 and 1h")
		}
		c.negCacheSize, c.negTTL = size, ttl
		return nil
	}
}

// WithStoreTimeout bounds one key lookup in the store.
func WithStoreTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("store timeout must be positive")
		}
		c.storeTimeout = d
		return nil
	}
}

// WithMaxTokenBytes bounds the token's size (token_too_large beyond it), so
// that no token can make the verifier do unbounded work.
func WithMaxTokenBytes(n int) Option {
	return func(c *config) error {
		if n < 64 || n > MaxTokenBytesLimit {
			return errors.New("max token bytes must be between 64 and " + strconv.Itoa(MaxTokenBytesLimit))
		}
		c.maxTokenBytes = n
		return nil
	}
}

// WithClock replaces time.Now, for tests and replays.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("clock must not be nil")
		}
		c.now, c.customClock = now, true
		return nil
	}
}

// WithKeyPolicy sets the key sizes accepted by AddKey.
func WithKeyPolicy(p KeyPolicy) Option {
	return func(c *config) error {
		p = p.withDefaults()
		if p.MinBits < 1024 || p.MaxBits > 16384 || p.MinBits > p.MaxBits {
			return errors.New("key policy must satisfy 1024 <= min bits <= max bits <= 16384")
		}
		c.policy = p
		return nil
	}
}
