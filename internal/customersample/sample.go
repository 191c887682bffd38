// Package customersample signs tokens the way the customer's sample server
// does, with the customer's library and calls: lestrrat-go/jwx v2,
// jwk.ParseReader(f, jwk.WithPEM(true)) on the private key file downloaded
// from jwtgate, then jws.Sign with RS256 and typ "JWT"; aud is the project,
// exp five minutes after iat. Tests use it to prove that a key pair jwtgate
// generates works with that code unchanged. (jwx v2 is no longer maintained
// upstream; it is here because it is what the customer runs.)
package customersample

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// SignFile reads the PEM private key at path and signs a token for kid
// and project, issued at now.
func SignFile(path, kid, project string, now time.Time) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return Sign(f, kid, project, now)
}

// SignDownloaded is the tests' use of the sample: it saves privatePEM (the
// private key as jwtgate returned it) to a file of t's, signs a token for
// kid and project with SignFile, issued now, and fails t if it cannot.
func SignDownloaded(t testing.TB, privatePEM []byte, kid, project string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "private.pem")
	if err := os.WriteFile(path, privatePEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := SignFile(path, kid, project, time.Now())
	if err != nil {
		t.Fatalf("the customer's sample cannot sign with the downloaded key: %v", err)
	}
	return s
}

// Sign is SignFile on an open reader.
func Sign(pemKey io.Reader, kid, project string, now time.Time) (string, error) {
	set, err := jwk.ParseReader(pemKey, jwk.WithPEM(true))
	if err != nil {
		return "", err
	}
	key, ok := set.Key(0)
	if !ok || set.Len() != 1 {
		return "", errors.New("customersample: want exactly one key in the file")
	}
	hdrs := jws.NewHeaders()
	if err := hdrs.Set(jws.TypeKey, "JWT"); err != nil {
		return "", err
	}
	if err := hdrs.Set(jws.KeyIDKey, kid); err != nil {
		return "", err
	}
	payload, err := json.Marshal(map[string]any{
		"aud": project,
		"sub": "sample-user",
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	})
	if err != nil {
		return "", err
	}
	tok, err := jws.Sign(payload, jws.WithKey(jwa.RS256, key, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		return "", err
	}
	return string(tok), nil
}
