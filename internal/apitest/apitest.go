// Package apitest holds the HTTP helpers that tests of a real jwtgate
// server share (the server's own tests, the PostgreSQL multi-node tests):
// plain net/http requests to loopback listeners, with failures reported
// through testing.TB. It does not import the server, so the server's
// internal tests can use it.
package apitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing the test otherwise.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

var client = &http.Client{Timeout: 15 * time.Second}

// Do sends one request; headers are name, value pairs (a name may repeat).
func Do(t testing.TB, method, url string, body []byte, headers ...string) Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// AdminDo sends an admin request to adminURL+path with the bearer token; a
// body that is not a string or []byte is sent as JSON.
func AdminDo(t testing.TB, adminURL, token, method, path string, body any) Response {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		b = enginetest.MustJSON(v)
	}
	return Do(t, method, adminURL+path, b, "Authorization", "Bearer "+token)
}
