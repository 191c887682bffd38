package server

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jwtgate/jwtgate/engine"
)

// Bounds of a JWKS fetch.
const (
	// MaxJWKSBytes bounds a JWKS response body.
	MaxJWKSBytes = 64 << 10
	// JWKSFetchTimeout bounds one fetch: connecting, TLS, headers and body.
	JWKSFetchTimeout = 5 * time.Second
	// MaxJWKSKeys bounds the keys of one JWKS.
	MaxJWKSKeys = 100
	// maxJWKSURLBytes bounds a JWKS URL.
	maxJWKSURLBytes = 2048
)

// JWKSImportConfig configures the import of keys from JWKS URLs
// (PUT /v1/projects/{project}/jwks-source).
type JWKSImportConfig struct {
	// AllowPrivate lets the importer connect to loopback, private,
	// link-local and other non-public addresses (for tests and private
	// identity providers). Off by default: only public addresses.
	AllowPrivate bool
	// RootCAs, when set, replaces the system roots for JWKS servers.
	RootCAs *x509.CertPool
	// Interval is how often each node looks at the sources for due
	// fetches. Default 5s.
	Interval time.Duration
	// UnknownKIDInterval bounds the fetches a token with an unknown kid
	// for the project triggers: at most one per interval per project,
	// across nodes. Default 30s.
	UnknownKIDInterval time.Duration
}

// Defaults of JWKSImportConfig.
const (
	DefaultJWKSInterval           = 5 * time.Second
	DefaultJWKSUnknownKIDInterval = 30 * time.Second
)

// errRedirect refuses every redirect: a JWKS URL must name the document.
var errRedirect = errors.New("the JWKS server answered with a redirect; redirects are not followed: give the final URL")

// publicAddr reports whether ip is a public unicast address: not
// loopback, private, link-local, multicast, unspecified, shared (CGNAT),
// benchmarking, reserved or "this network".
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: may map to a private IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),
}

// dialControl checks the address a connection is about to be made to,
// after name resolution: a name that resolves (or rebinds) to a
// non-public address is refused unless allowPrivate.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if network != "tcp4" && network != "tcp6" && network != "tcp" {
			return fmt.Errorf("refusing a %s connection for a JWKS fetch", network)
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("refusing to connect to %q: not an IP address", host)
		}
		if !allowPrivate && !publicAddr(ip) {
			// The address is not named: last_error is shown to scoped
			// tokens, and must not map internal names to addresses.
			return errors.New("refusing to connect: the host resolves to an address that is not a public address (a server started with --jwks-allow-private allows it)")
		}
		return nil
	}
}

// newJWKSClient returns the HTTP client of JWKS fetches: HTTPS with TLS
// 1.2+, no proxy, no redirects, the dial-time address check, and the
// 5 s bound on the whole exchange.
func newJWKSClient(cfg JWKSImportConfig) *http.Client {
	d := &net.Dialer{Timeout: JWKSFetchTimeout, Control: dialControl(cfg.AllowPrivate)}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.RootCAs},
		TLSHandshakeTimeout:    JWKSFetchTimeout,
		ResponseHeaderTimeout:  JWKSFetchTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConns:           16,
		IdleConnTimeout:        30 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       JWKSFetchTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect },
	}
}

// checkJWKSURL validates a JWKS URL as given to the admin API; "" when it
// is acceptable, else what is wrong. Names are checked at connection time.
func checkJWKSURL(raw string, allowPrivate bool) string {
	if len(raw) > maxJWKSURLBytes {
		return "url is longer than 2048 bytes"
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return "url must be an absolute https:// URL"
	}
	if u.Scheme != "https" {
		return "url must use https (got " + strconv.Quote(u.Scheme) + "); plain http is refused"
	}
	if u.Host == "" || u.Hostname() == "" {
		return "url must name a host"
	}
	if u.User != nil {
		return "url must not carry credentials (user:password@)"
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "url must not have a #fragment"
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate && !publicAddr(ip) {
		return "url names " + ip.String() + ", not a public address (a server started with --jwks-allow-private allows it)"
	}
	return ""
}

// fetchResult is the outcome of one JWKS fetch.
type fetchResult struct {
	body        []byte
	etag        string
	maxAge      time.Duration // from Cache-Control; 0 when absent or no-cache
	notModified bool
}

func fetchJWKS(ctx context.Context, c *http.Client, rawURL, etag string) (*fetchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, JWKSFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, errors.New("the URL cannot be requested")
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("User-Agent", "jwtgate-jwks-import")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, http.ErrHandlerTimeout) {
			return nil, errors.New("the fetch took longer than 5s")
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			err = oe.Err // without the resolved address
		}
		return nil, errors.New("fetch failed: " + err.Error())
	}
	defer resp.Body.Close()
	r := &fetchResult{maxAge: cacheMaxAge(resp.Header.Values("Cache-Control"))}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		r.notModified = true
		r.etag = etag
		if e := resp.Header.Get("ETag"); e != "" {
			r.etag = e
		}
		return r, nil
	default:
		return nil, fmt.Errorf("the JWKS server answered HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, errors.New("the fetch took longer than 5s")
		}
		return nil, errors.New("reading the JWKS failed: " + err.Error())
	}
	if len(body) > MaxJWKSBytes {
		return nil, errors.New("the JWKS is larger than 64 KiB")
	}
	r.body = body
	if e := resp.Header.Get("ETag"); len(e) <= 256 {
		r.etag = e
	}
	return r, nil
}

// cacheMaxAge returns the max-age of Cache-Control values; 0 when there
// is none or the response must not be cached.
func cacheMaxAge(vals []string) time.Duration {
	var age time.Duration
	for _, v := range vals {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return 0
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64)
				if err == nil && n > 0 {
					age = time.Duration(min(n, 7*86400)) * time.Second
				}
			}
		}
	}
	return age
}

// jwksKey is one key of a JWKS that passed the key policy.
type jwksKey struct {
	kid string
	pub *rsa.PublicKey
}

// parseJWKS reads a JWK Set: strict JSON with a "keys" array of at most
// MaxJWKSKeys members. Each key goes through engine.ParseJWK with the
// server's key policy (the policy of POST .../keys); a key that fails it,
// has no valid kid, or repeats a kid is left out and described in
// keyErrors (by kid, or "#<index>" when it has none).
func parseJWKS(body []byte, policy engine.KeyPolicy) (keys []jwksKey, keyErrors map[string]string, err error) {
	if err := engine.ValidateJSONObject(body); err != nil {
		return nil, nil, errors.New("the response is not a JSON object: " + err.Error())
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || set.Keys == nil {
		return nil, nil, errors.New(`the response is not a JWK Set: no "keys" array`)
	}
	if len(set.Keys) > MaxJWKSKeys {
		return nil, nil, fmt.Errorf("the JWK Set has %d keys, more than %d", len(set.Keys), MaxJWKSKeys)
	}
	keyErrors = map[string]string{}
	seen := map[string]bool{}
	for i, raw := range set.Keys {
		var head struct {
			KID any `json:"kid"`
			Kty any `json:"kty"`
		}
		_ = json.Unmarshal(raw, &head)
		kid, _ := head.KID.(string)
		name := kid
		if !engine.ValidKID(kid) {
			name = "#" + strconv.Itoa(i)
		}
		if kty, _ := head.Kty.(string); kty != "RSA" {
			keyErrors[name] = "kty " + strconv.Quote(kty) + ": only RSA keys (RS256) are imported"
			continue
		}
		pub, _, perr := engine.ParseJWK(raw, policy)
		switch {
		case perr != nil:
			keyErrors[name] = perr.Error()
		case kid == "":
			keyErrors[name] = "the key has no kid; imported keys need one"
		case !engine.ValidKID(kid):
			keyErrors[name] = `the kid does not match ^[A-Za-z0-9._-]{1,128}$`
		case seen[kid]:
			keyErrors[name] = "the kid appears more than once in the JWK Set"
		default:
			seen[kid] = true
			keys = append(keys, jwksKey{kid: kid, pub: pub})
		}
	}
	return keys, keyErrors, nil
}
