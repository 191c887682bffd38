package loadgen

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// MaxTargets bounds how many targets are loaded into memory.
const MaxTargets = 20_000_000

// Target is a prepared request: a Vegeta target with its expected verdict,
// its header pairs held as bytes so that sending it copies no strings.
type Target struct {
	Method string
	URL    string
	Expect Class
	Line   int // 1-based line in the target file

	host    string // scheme://host:port, the key of its HostClient
	addr    string // host:port
	tls     bool
	method  []byte
	uri     []byte // path and query
	hostHdr []byte
	headers [][2][]byte
	body    []byte
}

// ReadTargets reads Vegeta JSON targets (at most limit; 0 means
// MaxTargets) with vegeta.NewJSONTargeter and prepares them. Each must
// carry an X-Loadgen-Expect header.
func ReadTargets(r io.Reader, limit int) ([]Target, error) {
	if limit <= 0 || limit > MaxTargets {
		limit = MaxTargets
	}
	tr := vegeta.NewJSONTargeter(r, nil, nil)
	var out []Target
	parsed := map[string]*url.URL{}
	for len(out) < limit {
		var vt vegeta.Target
		err := tr(&vt)
		if errors.Is(err, vegeta.ErrNoTargets) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("target %d: %v", len(out)+1, err)
		}
		t, err := prepare(&vt, parsed)
		if err != nil {
			return nil, fmt.Errorf("target %d: %v", len(out)+1, err)
		}
		t.Line = len(out) + 1
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, errors.New("no targets")
	}
	return out, nil
}

// ReadTargetFile is ReadTargets on a file.
func ReadTargetFile(path string, limit int) ([]Target, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadTargets(f, limit)
}

func prepare(vt *vegeta.Target, parsed map[string]*url.URL) (Target, error) {
	exp := vt.Header.Get(ExpectHeader)
	cls, ok := ParseClass(exp)
	if !ok {
		return Target{}, fmt.Errorf("missing or unknown %s header %q", ExpectHeader, exp)
	}
	u := parsed[vt.URL]
	if u == nil {
		var err error
		if u, err = url.Parse(vt.URL); err != nil {
			return Target{}, err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return Target{}, fmt.Errorf("URL %q: scheme must be http or https", vt.URL)
		}
		if len(parsed) < 1000 {
			parsed[vt.URL] = u
		}
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	t := Target{
		Method: vt.Method, URL: vt.URL, Expect: cls,
		host: u.Scheme + "://" + addr, addr: addr, tls: u.Scheme == "https",
		method: []byte(vt.Method), uri: []byte(u.RequestURI()), hostHdr: []byte(u.Host), body: vt.Body,
	}
	for k, vs := range vt.Header {
		if strings.EqualFold(k, "Host") {
			if len(vs) > 0 {
				t.hostHdr = []byte(vs[0])
			}
			continue
		}
		for _, v := range vs {
			t.headers = append(t.headers, [2][]byte{[]byte(k), []byte(v)})
		}
	}
	return t, nil
}
