package engine_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// reference verifies with golang-jwt/jwt/v5 configured with the same rules,
// plus the rules it has no option for (max TTL, aud must name the key's
// project, required string claims). It does not require iat, as golang-jwt
// cannot: that is one of the named places where jwtgate is stricter.
type reference struct {
	keys     map[string]refKey
	now      time.Time
	leeway   time.Duration
	maxTTL   int64
	required []string
}

type refKey struct {
	pub     *rsa.PublicKey
	project string
	active  bool
}

var errRef = errors.New("reference refused")

func (r *reference) verify(token string) error {
	var project string
	claims := jwt.MapClaims{}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(r.leeway),
		jwt.WithTimeFunc(func() time.Time { return r.now }),
	)
	_, err := p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, ok := t.Header["kid"].(string)
		if !ok {
			return nil, errRef
		}
		k, ok := r.keys[kid]
		if !ok || !k.active {
			return nil, errRef
		}
		project = k.project
		return k.pub, nil
	})
	if err != nil {
		return err
	}
	// golang-jwt has no option to require iat; it checks it only when
	// present (docs/API.md requires it: a named strictness).
	if iat, ok := claims["iat"].(float64); ok {
		if exp := claims["exp"].(float64); exp-iat > float64(r.maxTTL) {
			return errRef
		}
	}
	aud, err := claims.GetAudience()
	if err != nil {
		return err
	}
	found := false
	for _, a := range aud {
		found = found || a == project
	}
	if !found {
		return errRef
	}
	for _, name := range r.required {
		if s, ok := claims[name].(string); !ok || s == "" {
			return errRef
		}
	}
	return nil
}

// stricterReason names the documented place where jwtgate refuses a token
// that golang-jwt (with the same rules) accepts, or "" if there is none.
func stricterReason(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	for _, p := range parts {
		if strings.ContainsAny(p, "\r\n") {
			return "CR/LF inside base64url"
		}
		if b, err := base64.RawURLEncoding.DecodeString(p); err == nil && base64.RawURLEncoding.EncodeToString(b) != p {
			return "non-canonical base64url (unused bits set)"
		}
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pl, _ := base64.RawURLEncoding.DecodeString(parts[1])
	for _, doc := range [][]byte{hdr, pl} {
		if dupNames(doc) {
			return "duplicate member names"
		}
		if !json.Valid(doc) || bytes.ContainsRune(doc, 0xFFFD) {
			return "JSON golang-jwt tolerates"
		}
	}
	var h map[string]any
	_ = json.Unmarshal(hdr, &h)
	if _, ok := h["crit"]; ok {
		return "crit header"
	}
	if _, ok := h["cty"]; ok {
		return "cty header"
	}
	if typ, ok := h["typ"]; ok {
		s, _ := typ.(string)
		if !strings.EqualFold(s, "JWT") && !strings.EqualFold(s, "application/jwt") {
			return "typ other than JWT"
		}
	}
	var c map[string]any
	_ = json.Unmarshal(pl, &c)
	for _, name := range []string{"exp", "iat", "nbf"} {
		switch v := c[name].(type) {
		case nil:
		case float64:
			if v != float64(int64(v)) {
				return "fractional NumericDate rounded to the stricter side"
			}
			if v < 0 || v > 1<<53 {
				return "NumericDate out of range"
			}
		default:
			return "NumericDate not a number"
		}
	}
	for _, name := range []string{"sub", "iss", "jti"} {
		if v, ok := c[name]; ok {
			if _, ok := v.(string); !ok {
				return name + " not a string"
			}
		}
	}
	if a, ok := c["aud"].([]any); ok {
		if len(a) == 0 {
			return "empty aud array"
		}
		for _, x := range a {
			if _, ok := x.(string); !ok {
				return "aud array with a non-string"
			}
		}
	}
	return ""
}

// dupNames reports duplicate member names at any level.
func dupNames(doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		obj   bool
		names map[string]bool
		key   bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{obj: true, names: map[string]bool{}, key: true})
			case '[':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.obj && top.key {
				if top.names[t] {
					return true
				}
				top.names[t] = true
				top.key = false
				continue
			}
			if top != nil && top.obj {
				top.key = true
			}
		default:
			if top != nil && top.obj {
				top.key = true
			}
		}
	}
}

var jsonB64 = base64.RawURLEncoding
