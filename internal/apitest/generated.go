package apitest

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/engine"
)

// GeneratedKey is a 201 answer of POST /v1/projects/{project}/keys:generate:
// the key object and the private key it returned once.
type GeneratedKey struct {
	Object     map[string]any
	KID        string
	PrivatePEM []byte
	Private    *rsa.PrivateKey
}

// Generate calls the key-pair generation route with body (nil: none) and
// checks the parts every answer must have: 201, Cache-Control: no-store, a
// key object of the project, and a PKCS#8 private key whose public half is
// the registered key.
func Generate(t testing.TB, adminURL, token, project string, body any) GeneratedKey {
	t.Helper()
	r := AdminDo(t, adminURL, token, "POST", "/v1/projects/"+project+"/keys:generate", body)
	if r.Status != 201 {
		t.Fatalf("generate: %d %s", r.Status, r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("generate: Cache-Control %q, want no-store", cc)
	}
	obj := r.JSON(t)
	pemText, _ := obj["private_key"].(string)
	delete(obj, "private_key")
	block, rest := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("generate: private_key is not one PKCS#8 PEM block: %.40q", pemText)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("generate: private key: %v", err)
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("generate: private key is %T, want RSA", k)
	}
	kid, _ := obj["kid"].(string)
	if kid == "" || obj["project"] != project || obj["status"] != "active" || obj["algorithm"] != "RS256" ||
		obj["bits"] != float64(priv.N.BitLen()) || obj["verified_count"] != float64(0) || obj["last_used_at"] != nil {
		t.Fatalf("generate: key object %v", obj)
	}
	var tp struct{ Thumbprint string }
	b, _ := json.Marshal(obj)
	_ = json.Unmarshal(b, &tp)
	if tp.Thumbprint != engine.Thumbprint(&priv.PublicKey) {
		t.Fatalf("generate: the key object's thumbprint %s is not the returned private key's public half", tp.Thumbprint)
	}
	return GeneratedKey{Object: obj, KID: kid, PrivatePEM: []byte(pemText), Private: priv}
}

// PrivateKeyMaterial lists the forms in which priv's secret could sit in a
// file, a table or a log: the PEM body (each base64 line), the PKCS#8 and
// PKCS#1 DER encodings (raw, base64, hex), and the private exponent and
// both primes as raw big-endian bytes, hex (either case) and unpadded
// base64 (standard and URL, as in a JWK).
// Searching stored data for each proves the private key was not stored.
func PrivateKeyMaterial(t testing.TB, priv *rsa.PrivateKey, pemText []byte) map[string][]byte {
	t.Helper()
	forms := map[string][]byte{}
	block, _ := pem.Decode(pemText)
	if block == nil {
		t.Fatal("no PEM block")
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(priv)
	for name, der := range map[string][]byte{"pkcs8": block.Bytes, "pkcs1": pkcs1} {
		forms[name+" DER"] = der
		forms[name+" DER base64"] = []byte(base64.StdEncoding.EncodeToString(der)) // a JSON []byte
		forms[name+" DER hex"] = []byte(hex.EncodeToString(der))                   // a bytea's text form
	}
	for i, line := range strings.Split(string(pemText), "\n") {
		if len(line) == 64 { // full base64 lines of the body
			forms["PEM line "+strconv.Itoa(i)] = []byte(line)
		}
	}
	for name, n := range map[string]*big.Int{"d": priv.D, "p": priv.Primes[0], "q": priv.Primes[1]} {
		raw := n.Bytes()
		forms[name+" raw"] = raw
		forms[name+" hex"] = []byte(hex.EncodeToString(raw))
		forms[name+" HEX"] = []byte(strings.ToUpper(hex.EncodeToString(raw)))
		forms[name+" base64"] = []byte(base64.RawStdEncoding.EncodeToString(raw))
		forms[name+" base64url"] = []byte(base64.RawURLEncoding.EncodeToString(raw))
	}
	return forms
}

// FindMaterial returns the names of the forms of forms found in data.
func FindMaterial(data []byte, forms map[string][]byte) []string {
	var found []string
	for name, f := range forms {
		if bytes.Contains(data, f) {
			found = append(found, name)
		}
	}
	return found
}
