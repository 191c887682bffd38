package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtgate/jwtgate/engine"
)

// MaxCount bounds how many tokens one Mint call writes.
const MaxCount = 100_000_000

// MintConfig configures Mint.
type MintConfig struct {
	Keyring *Keyring
	Count   int // tokens to write, 1..MaxCount
	Mix     Mix
	// Unique is how many distinct valid tokens to make; the other valid
	// tokens repeat them in turn, as real clients reuse theirs. 0 means
	// every valid token is distinct. The distinct tokens are held in memory
	// (about 0.6 KB each) when they are fewer than the valid tokens.
	Unique int
	URL    string // verify URL written into each target, e.g. http://127.0.0.1:8080/v1/verify
	Method string // default GET
	// TTL is the lifetime (exp - iat) of valid tokens; default ServerMaxTTL.
	TTL time.Duration
	// Claims are extra string claims put in every payload, e.g. the claims
	// the server is told to require.
	Claims map[string]string
	// What the server is configured with (defaults: the engine's).
	ServerMaxTTL        time.Duration
	ServerLeeway        time.Duration
	ServerMaxTokenBytes int
	Workers             int // signing goroutines; default GOMAXPROCS
	Now                 func() time.Time
	// Progress, when set, is called about every 200ms and at the end with
	// the work done and the total (signing of unique tokens counts as work).
	Progress func(done, total int64)
}

// Manifest records how and when a target file was minted; it is written
// next to the file (ManifestPath) so that attack can tell a stale file.
type Manifest struct {
	Version             int            `json:"version"`
	Project             string         `json:"project"`
	URL                 string         `json:"url"`
	Count               int            `json:"count"`
	Mix                 string         `json:"mix"`
	Classes             map[string]int `json:"classes"`
	UniqueValid         int            `json:"unique_valid"`
	Keys                []ManifestKey  `json:"keys"`
	MintedAt            time.Time      `json:"minted_at"`
	FinishedAt          time.Time      `json:"finished_at"`
	ValidUntil          time.Time      `json:"valid_until"`
	TTLSeconds          int64          `json:"ttl_seconds"`
	ServerMaxTTLSeconds int64          `json:"server_max_ttl_seconds"`
	ServerLeewaySeconds int64          `json:"server_leeway_seconds"`
	ServerMaxTokenBytes int            `json:"server_max_token_bytes"`
	Signatures          int            `json:"rsa_signatures"`
	Workers             int            `json:"workers"`
	Seconds             float64        `json:"seconds"`
	TokensPerSecond     float64        `json:"tokens_per_second"`
	SignaturesPerSecond float64        `json:"signatures_per_second"`
}

// ManifestKey names a key the tokens were signed with (never the key itself).
type ManifestKey struct {
	KID    string `json:"kid"`
	Status string `json:"status"`
}

// ManifestPath is where the manifest of a target file lives.
func ManifestPath(targets string) string { return targets + ".manifest.json" }

// WriteManifest writes m as indented JSON.
func WriteManifest(w io.Writer, m *Manifest) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// ReadManifest reads a manifest.
func ReadManifest(r io.Reader) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %v", err)
	}
	return &m, nil
}

// Staleness says whether a target file minted as m still gets the verdicts
// it expects for a run that starts at now and lasts d: "" if so, else why not.
func (m *Manifest) Staleness(now time.Time, d time.Duration) string {
	switch {
	case now.After(m.ValidUntil):
		return fmt.Sprintf("the targets were minted at %s and their valid tokens expired at %s (%s ago): mint again",
			m.MintedAt.Format(time.RFC3339), m.ValidUntil.Format(time.RFC3339), now.Sub(m.ValidUntil).Round(time.Second))
	case now.Add(d).After(m.ValidUntil):
		return fmt.Sprintf("the targets' valid tokens expire at %s, %s into this %s run: later verdicts will be expired",
			m.ValidUntil.Format(time.RFC3339), m.ValidUntil.Sub(now).Round(time.Second), d)
	}
	return ""
}

// maxChunk is the most tokens a worker makes per turn; smaller batches
// (down to minChunk) keep every worker busy to the end of a small run.
const (
	maxChunk = 256
	minChunk = 8
)

func chunkFor(n, workers int) int { return max(minChunk, min(maxChunk, n/(workers*16))) }

// Mint writes cfg.Count Vegeta JSON targets to w, one per line, in the
// class proportions of cfg.Mix, interleaved so that every prefix of the file
// holds about the same mix. Tokens are made on cfg.Workers goroutines; only
// classes that need a genuine RSA signature pay for one. It returns the
// manifest to store beside the file (see ManifestPath).
func Mint(ctx context.Context, w io.Writer, cfg MintConfig) (*Manifest, error) {
	if cfg.Keyring == nil || len(cfg.Keyring.Active()) == 0 {
		return nil, errors.New("mint: no active signing key")
	}
	if cfg.Count < 1 || cfg.Count > MaxCount {
		return nil, fmt.Errorf("mint: count must be between 1 and %d", MaxCount)
	}
	if cfg.Mix.Total() == 0 {
		return nil, errors.New("mint: empty mix")
	}
	if cfg.Mix.Has(Class(engine.CodeKeyInactive)) && cfg.Keyring.InactiveKey() == nil {
		return nil, errors.New("mint: the mix has key_inactive but the keyring has no inactive key")
	}
	if cfg.URL == "" {
		return nil, errors.New("mint: no target URL")
	}
	if cfg.Method == "" {
		cfg.Method = "GET"
	}
	if cfg.ServerMaxTTL == 0 {
		cfg.ServerMaxTTL = engine.DefaultMaxTTL
	}
	if cfg.ServerLeeway == 0 {
		cfg.ServerLeeway = engine.DefaultLeeway
	}
	if cfg.ServerMaxTokenBytes == 0 {
		cfg.ServerMaxTokenBytes = engine.DefaultMaxTokenBytes
	}
	if cfg.TTL == 0 {
		cfg.TTL = cfg.ServerMaxTTL
	}
	if cfg.TTL < time.Second || cfg.TTL > cfg.ServerMaxTTL {
		return nil, fmt.Errorf("mint: ttl must be between 1s and the server's max TTL (%s)", cfg.ServerMaxTTL)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Unique < 0 {
		return nil, errors.New("mint: unique must not be negative")
	}
	ring := cfg.Keyring
	var extra strings.Builder
	names := make([]string, 0, len(cfg.Claims))
	for k := range cfg.Claims {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch k {
		case "aud", "iat", "exp", "nbf", "sub", "jti", "pad":
			return nil, fmt.Errorf("mint: claim %q is set by the generator", k)
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(cfg.Claims[k])
		extra.WriteByte(',')
		extra.Write(kb)
		extra.WriteByte(':')
		extra.Write(vb)
	}
	aud, _ := json.Marshal([]string{ring.Project})
	other, _ := json.Marshal([]string{ring.Project + "-not"})
	var seed [6]byte
	_, _ = rand.Read(seed[:])
	params := &tokenParams{
		ring: ring, active: ring.Active(), inactive: ring.InactiveKey(),
		audJSON: aud, otherAudJSON: other, extra: []byte(extra.String()),
		ttl: int64(cfg.TTL / time.Second), maxTTL: int64(cfg.ServerMaxTTL / time.Second),
		maxTokBytes: cfg.ServerMaxTokenBytes, seed: hex.EncodeToString(seed[:]),
	}
	urlJSON, _ := json.Marshal(cfg.URL)
	methodJSON, _ := json.Marshal(cfg.Method)

	pat := cfg.Mix.pattern()
	period := len(pat)
	// prefix[c][j] = tokens of class c among pat[:j].
	var prefix [NumClasses][]int32
	for c := range NumClasses {
		if cfg.Mix.Weights[c] > 0 {
			prefix[c] = make([]int32, period+1)
			for j, pc := range pat {
				prefix[c][j+1] = prefix[c][j]
				if int(pc) == c {
					prefix[c][j+1]++
				}
			}
		}
	}
	classIndex := func(i int, c Class) int {
		return (i/period)*int(cfg.Mix.Weights[c]) + int(prefix[c][i%period])
	}
	counts := cfg.Mix.Counts(cfg.Count)
	start := cfg.Now()
	var done, sigs atomic.Int64
	total := int64(cfg.Count)

	// Distinct valid tokens held in memory when fewer than the valid tokens.
	var uniq [][]byte
	if cfg.Unique > 0 && cfg.Unique < counts[Valid] {
		// Signed first, not counted: the progress counts targets written,
		// up to Count.
		uniq = make([][]byte, cfg.Unique)
	}
	stopProgress := startProgress(cfg.Progress, &done, total)
	defer stopProgress()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if uniq != nil {
		chunkSize := int64(chunkFor(len(uniq), cfg.Workers))
		var next atomic.Int64
		var wg sync.WaitGroup
		for wkr := range cfg.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := newBuilder(params, uint64(wkr)<<32|1)
				for ctx.Err() == nil {
					lo := int(next.Add(chunkSize) - chunkSize)
					if lo >= len(uniq) {
						break
					}
					hi := min(lo+int(chunkSize), len(uniq))
					for j := lo; j < hi; j++ {
						b.build(Valid, j, cfg.Now().Unix())
						uniq[j] = append([]byte(nil), b.tok...)
					}
				}
				sigs.Add(int64(b.sigs))
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}

	type chunk struct {
		n   int
		buf []byte
	}
	chunkSize := chunkFor(cfg.Count, cfg.Workers)
	nchunks := (cfg.Count + chunkSize - 1) / chunkSize
	out := make(chan chunk, 2*cfg.Workers)
	slots := make(chan struct{}, 4*cfg.Workers) // bounds chunks in flight
	bufPool := sync.Pool{New: func() any { return make([]byte, 0, chunkSize*800) }}
	var next atomic.Int64
	var wg sync.WaitGroup
	for wkr := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newBuilder(params, uint64(wkr)<<32|2)
			defer func() { sigs.Add(int64(b.sigs)) }()
			for {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				n := int(next.Add(1)) - 1
				if n >= nchunks {
					<-slots
					return
				}
				buf := bufPool.Get().([]byte)[:0]
				now := cfg.Now().Unix()
				for i := n * chunkSize; i < min((n+1)*chunkSize, cfg.Count); i++ {
					cls := pat[i%period]
					ci := classIndex(i, cls)
					var hasTok bool
					if cls == Valid && uniq != nil {
						b.tok = append(b.tok[:0], uniq[ci%len(uniq)]...)
						hasTok = true
					} else {
						hasTok = b.build(cls, ci, now)
					}
					buf = appendTarget(buf, methodJSON, urlJSON, b.tok, hasTok, cls)
				}
				select {
				case out <- chunk{n, buf}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()

	bw := bufio.NewWriterSize(w, 1<<20)
	pending := map[int][]byte{}
	want := 0
	var werr error
	for c := range out {
		pending[c.n] = c.buf
		for {
			buf, ok := pending[want]
			if !ok {
				break
			}
			delete(pending, want)
			if werr == nil {
				if _, werr = bw.Write(buf); werr != nil {
					cancel()
				}
			}
			done.Add(int64(min(chunkSize, cfg.Count-want*chunkSize)))
			bufPool.Put(buf[:0]) //nolint:staticcheck // a slice header is fine here
			want++
			<-slots
		}
	}
	if werr == nil {
		werr = bw.Flush()
	}
	if werr != nil {
		return nil, fmt.Errorf("mint: write: %w", werr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if want != nchunks {
		return nil, errors.New("mint: interrupted")
	}
	stopProgress()
	end := cfg.Now()
	secs := end.Sub(start).Seconds()
	m := &Manifest{
		Version: 1, Project: ring.Project, URL: cfg.URL, Count: cfg.Count, Mix: cfg.Mix.String(),
		Classes: map[string]int{}, UniqueValid: counts[Valid], MintedAt: start.UTC().Truncate(time.Second),
		FinishedAt: end.UTC(), ValidUntil: start.UTC().Truncate(time.Second).Add(cfg.TTL),
		TTLSeconds: params.ttl, ServerMaxTTLSeconds: params.maxTTL,
		ServerLeewaySeconds: int64(cfg.ServerLeeway / time.Second), ServerMaxTokenBytes: cfg.ServerMaxTokenBytes,
		Signatures: int(sigs.Load()), Workers: cfg.Workers, Seconds: secs,
	}
	if uniq != nil {
		m.UniqueValid = len(uniq)
	}
	for c, n := range counts {
		if n > 0 {
			m.Classes[Class(c).String()] = n
		}
	}
	for _, k := range ring.Keys {
		st := "active"
		if k.Inactive {
			st = "inactive"
		}
		m.Keys = append(m.Keys, ManifestKey{KID: k.KID, Status: st})
	}
	if secs > 0 {
		m.TokensPerSecond = float64(cfg.Count) / secs
		m.SignaturesPerSecond = float64(m.Signatures) / secs
	}
	return m, nil
}

// appendTarget appends one Vegeta JSON target line.
func appendTarget(dst, methodJSON, urlJSON, tok []byte, hasTok bool, cls Class) []byte {
	dst = append(dst, `{"method":`...)
	dst = append(dst, methodJSON...)
	dst = append(dst, `,"url":`...)
	dst = append(dst, urlJSON...)
	dst = append(dst, `,"header":{`...)
	if hasTok {
		dst = append(dst, `"Authorization":["Bearer `...)
		dst = append(dst, tok...) // base64url and dots: nothing to escape
		dst = append(dst, `"],`...)
	}
	dst = append(dst, `"`+ExpectHeader+`":["`...)
	dst = append(dst, cls.String()...)
	return append(dst, "\"]}}\n"...)
}

func startProgress(fn func(done, total int64), done *atomic.Int64, total int64) (stop func()) {
	if fn == nil {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn(done.Load(), total)
			case <-quit:
				fn(done.Load(), total)
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-finished }) }
}
