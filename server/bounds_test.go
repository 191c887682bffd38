package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

// timedClient is net/http's client, which writes a whole request before
// reading the answer, with a bound on each exchange.
var timedClient = &http.Client{Timeout: 10 * time.Second}

// Issue 9 item 7: the verify body is ignored, so it is capped at 4 KiB;
// beyond that the answer is 413 (with its JSON body, not a reset).
func TestVerifyBodyCap(t *testing.T) {
	ts := startServer(t, Config{})
	a := enginetest.Key("rsa2048-a")
	ts.addKey("myapp", a, "k1", "")
	good := token(a, "k1", "myapp", now(), 300, nil)
	send := func(method string, n int, chunked bool) (int, string) {
		t.Helper()
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s /v1/verify/api HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\n", method, good)
		body := strings.Repeat("b", n)
		if chunked {
			fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", n, body)
		} else {
			fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", n, body)
		}
		resp, rb := mustRaw(t, ts.srv.Addr(), b.Bytes())
		return resp.StatusCode, string(rb)
	}
	for _, method := range []string{"POST", "PUT"} {
		for _, chunked := range []bool{false, true} {
			if st, b := send(method, MaxVerifyBodyBytes, chunked); st != 200 {
				t.Errorf("%s body of %d (chunked %v): %d %s", method, MaxVerifyBodyBytes, chunked, st, b)
			}
			for _, n := range []int{MaxVerifyBodyBytes + 1, 65536, 1 << 20} {
				if st, b := send(method, n, chunked); st != 413 || !contains(b, `"error":"body_too_large"`) {
					t.Errorf("%s body of %d (chunked %v): %d %s, want 413", method, n, chunked, st, b)
				}
			}
		}
	}
	// A client that writes its whole body before reading (Go's net/http
	// does) reads the 413, not a reset: the server drains what it refused.
	for i := range 40 {
		n := 8<<10 + i*6000
		req, _ := http.NewRequest("PUT", ts.base+"/v1/verify/api", bytes.NewReader(make([]byte, n)))
		req.Header.Set("Authorization", "Bearer "+good)
		resp, err := timedClient.Do(req)
		if err != nil {
			t.Errorf("net/http client, body of %d: %v, want 413", n, err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("net/http client, body of %d: %d, want 413", n, resp.StatusCode)
		}
	}
	if MaxVerifyBodyBytes != 4<<10 {
		t.Errorf("MaxVerifyBodyBytes = %d, want 4 KiB", MaxVerifyBodyBytes)
	}
}

// Issue 9 item 10: an Authorization header of ~17 KB reset the connection.
// Up to the server's header limit an oversized token is 401
// token_too_large; beyond it the answer is 431; never a reset.
func TestVerifyOversizedAuthorizationHeader(t *testing.T) {
	ts := startServer(t, Config{})
	limit := ts.srv.cfg.MaxHeaderBytes
	if limit < 17<<10 {
		t.Fatalf("default header limit %d is under 17 KiB", limit)
	}
	for _, n := range []int{9 << 10, 12 << 10, 17 << 10, 17000, limit - 200} {
		req := rawRequest("GET", "/v1/verify", "Authorization", "Bearer "+strings.Repeat("a", n))
		resp, body, err := rawExchange(t, ts.srv.Addr(), req)
		if err != nil {
			t.Errorf("Authorization of %d bytes: %v", n, err)
			continue
		}
		if resp.StatusCode != 401 || !contains(string(body), `"error":"token_too_large"`) {
			t.Errorf("Authorization of %d bytes: %d %s, want 401 token_too_large", n, resp.StatusCode, body)
		}
	}
	for _, n := range []int{limit + 1, limit + 1000, 100 << 10, 1 << 20} {
		req := rawRequest("GET", "/v1/verify", "Authorization", "Bearer "+strings.Repeat("a", n))
		resp, body, err := rawExchange(t, ts.srv.Addr(), req)
		if err != nil {
			t.Errorf("Authorization of %d bytes (over the %d header limit): %v, want 431", n, limit, err)
			continue
		}
		if resp.StatusCode != 431 {
			t.Errorf("Authorization of %d bytes: %d %s, want 431", n, resp.StatusCode, body)
		}
	}
	// Nor with a client that writes the whole request before reading.
	for i := range 40 {
		n := limit + i*12000
		req, _ := http.NewRequest("GET", ts.base+"/v1/verify", nil)
		req.Header.Set("Authorization", "Bearer "+strings.Repeat("a", n))
		resp, err := timedClient.Do(req)
		if err != nil {
			t.Errorf("net/http client, Authorization of %d bytes: %v, want 431", n, err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 431 {
			t.Errorf("net/http client, Authorization of %d bytes: %d, want 431", n, resp.StatusCode)
		}
	}
}
