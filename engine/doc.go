// Package engine is jwtgate's verification core: it verifies RS256-signed
// JWTs (RFC 7519, compact JWS per RFC 7515) against RSA public keys
// registered per project, under the strict rules of docs/API.md and RFC 8725.
//
// A Verifier is built once over a KeyStore with New and is then immutable
// and safe for concurrent use:
//
//	v, err := engine.New(store, engine.WithLeeway(30*time.Second))
//	c := engine.AcquireClaims()
//	defer engine.ReleaseClaims(c)
//	if err := v.VerifyInto(token, c); err != nil {
//		code := engine.CodeOf(err) // e.g. engine.CodeExpired
//	}
//
// Checks run cheapest first (size, shape, strict base64url and JSON,
// algorithm, kid, claims) so that bad tokens are refused without an RSA
// operation; the signature is always checked before a token is accepted.
// Prepared keys live in a sharded LRU (hashicorp/golang-lru) bounded in
// bytes (WithKeyCacheBytes) with their per-key precomputation; verified
// tokens in a bounded cache keyed by the whole token. With a store that can
// list its kids (RegistryScanner), the Verifier keeps an index of the
// registered kids, so that an unknown kid costs no store read, and warms
// its key cache with the most recently used keys (RecentKeysLoader); Ready
// tells when both are done. Changing or deleting a key through the Verifier, or calling
// Invalidate for a change made elsewhere, takes effect before it returns.
//
// The package imports only the standard library and golang-lru; it has no
// HTTP in it.
package engine
