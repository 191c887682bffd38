package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/jwtgate/jwtgate/internal/tlsclient"
)

// adminFlags are the flags of every command that talks to the admin API.
type adminFlags struct {
	url, token, tokenFile         string
	caFile, clientCert, clientKey string
	timeout                       time.Duration
}

func addAdminFlags(fs *pflag.FlagSet) *adminFlags {
	var f adminFlags
	fs.StringVar(&f.url, "admin-url", defaultAdminURL, "base `URL` of the admin listener (env JWTGATE_ADMIN_URL)")
	fs.StringVar(&f.token, "admin-token", "", "admin bearer token (env JWTGATE_ADMIN_TOKEN)")
	fs.StringVar(&f.tokenFile, "admin-token-file", "", "`FILE` holding the admin token (env JWTGATE_ADMIN_TOKEN_FILE; default ./jwtgate-data/admin-token)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "request timeout")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM CA certificates to trust for an https:// --admin-url (env JWTGATE_CA_FILE); default: the system's")
	fs.StringVar(&f.clientCert, "client-cert", "", "PEM client certificate, for an admin listener started with --admin-client-ca (env JWTGATE_CLIENT_CERT)")
	fs.StringVar(&f.clientKey, "client-key", "", "PEM private key of --client-cert (env JWTGATE_CLIENT_KEY)")
	return &f
}

// client resolves the admin token and returns a client of the admin API.
func (f *adminFlags) client() (*keysClient, error) {
	base, err := checkAdminURL(f.url)
	if err != nil {
		return nil, err
	}
	tok, err := adminToken(f.token, f.tokenFile)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := tlsclient.Config(tlsclient.Files{CAFile: f.caFile, CertFile: f.clientCert, KeyFile: f.clientKey})
	if err != nil {
		return nil, errors.New("--ca-file/--client-cert/--client-key: " + err.Error())
	}
	return &keysClient{base: base, token: tok, http: tlsclient.HTTPClient(tlsCfg, f.timeout)}, nil
}

// apiError is an error answer of the admin API.
type apiError struct {
	Status     int
	statusText string
	verify     string // set when the answer came from the verify listener
	Code       string `json:"error"`
	Message    string `json:"message"`
	LastUsedAt string `json:"last_used_at"`
	SafeAfter  string `json:"safe_after"`
}

func (e *apiError) Error() string {
	if e.verify != "" {
		return e.verify
	}
	if e.Code == "" {
		return e.statusText
	}
	if e.Code == "key_in_use" {
		// The server's message speaks of the HTTP API (?force=true); on the
		// command line the override is a flag.
		return fmt.Sprintf("%d %s: %s (jwtgate: the flag is --force)", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// request sends one admin request; a status of 300 or more is an
// *apiError (which recognises an answer of the verify listener).
func (c *keysClient) request(method, path string, body any) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode, statusText: resp.Status}
		if looksLikeVerifyListener(resp, raw) {
			e.verify = fmt.Sprintf("%s answered %d %q: that looks like the verify listener (default port 8080), which has no key API; point --admin-url (or $JWTGATE_ADMIN_URL) at the admin listener, by default %s",
				c.base, resp.StatusCode, strings.TrimSpace(string(raw)), defaultAdminURL)
		} else {
			_ = json.Unmarshal(raw, e)
		}
		return nil, resp.StatusCode, e
	}
	return raw, resp.StatusCode, nil
}

// send is request without the status.
func (c *keysClient) send(method, path string, body any) ([]byte, error) {
	raw, _, err := c.request(method, path, body)
	return raw, err
}

// printJSON writes raw indented, or as it is if it is not JSON.
func printJSON(w io.Writer, raw []byte) {
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") != nil {
		w.Write(raw)
		return
	}
	out.WriteByte('\n')
	w.Write(out.Bytes())
}

// parseFlags parses args with fs (cli.Parse: named errors, exit 2) and
// applies the environment: exit code and whether to go on.
func parseFlags(fs *pflag.FlagSet, args []string, stderr io.Writer, prog string, skipEnv ...string) (int, bool) {
	if ok, code := cli.Parse(fs, prog, args, stderr, false); !ok {
		return code, false
	}
	if err := applyEnv(fs, skipEnv...); err != nil {
		return cli.UsageError(stderr, prog, err.Error()), false
	}
	return 0, true
}
