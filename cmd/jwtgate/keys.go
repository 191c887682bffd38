package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/jwtgate/jwtgate/internal/tlsclient"
)

const keysUsage = `Usage: jwtgate keys <command> --project ID [flags]

Manages keys over the admin API.

Commands:
  add      register a public key:  --public-key FILE (PEM or JWK JSON) [--kid K] [--label L]
  generate have the server make a key pair: --out FILE [--label L] [--bits N] [--kid K];
           writes the private key (PEM, mode 0600; an existing file is never
           overwritten) and prints the kid. The server keeps only the public
           key: the private key cannot be downloaded again.
  list     list the project's keys
  get      show one key:            --kid K
  update   change label or status:  --kid K [--label L] [--status active|inactive]
  delete   delete a key:            --kid K

The admin token comes from --admin-token, --admin-token-file,
$JWTGATE_ADMIN_TOKEN, $JWTGATE_ADMIN_TOKEN_FILE, or ./jwtgate-data/admin-token.

Flags:
`

type keysClient struct {
	base  string
	token string
	http  *http.Client
}

func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, keysUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return exitOK
		}
		return exitUsage
	}
	cmd := args[0]
	fs := pflag.NewFlagSet("jwtgate keys "+cmd, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	adminURL := fs.String("admin-url", "http://127.0.0.1:8081", "base URL of the admin listener (env JWTGATE_ADMIN_URL)")
	token := fs.String("admin-token", "", "admin bearer token (env JWTGATE_ADMIN_TOKEN)")
	tokenFile := fs.String("admin-token-file", "", "file holding the admin token (env JWTGATE_ADMIN_TOKEN_FILE; default ./jwtgate-data/admin-token)")
	project := fs.String("project", "", "project ID")
	kid := fs.String("kid", "", "key ID")
	label := fs.String("label", "", "key label")
	status := fs.String("status", "", "key status: active or inactive (update)")
	pubFile := fs.String("public-key", "", "public key file: PEM (PUBLIC KEY or RSA PUBLIC KEY) or a JWK JSON object (add)")
	outFile := fs.String("out", "", "file to write the generated private key to, mode 0600; must not exist (generate)")
	bits := fs.Int("bits", 0, "RSA modulus size of the generated pair (generate; default: the server's, 2048)")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	caFile := fs.String("ca-file", "", "PEM CA certificates to trust for an https:// --admin-url (env JWTGATE_CA_FILE); default: the system's")
	clientCert := fs.String("client-cert", "", "PEM client certificate, for an admin listener started with --admin-client-ca (env JWTGATE_CLIENT_CERT)")
	clientKey := fs.String("client-key", "", "PEM private key of --client-cert (env JWTGATE_CLIENT_KEY)")
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage+fs.FlagUsages()) }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := applyEnv(fs, "project", "kid", "label", "status", "public-key", "timeout", "out", "bits"); err != nil {
		fmt.Fprintln(stderr, "jwtgate keys:", err)
		return exitUsage
	}
	usageErr := func(msg string) int {
		fmt.Fprintf(stderr, "jwtgate keys %s: %s\n", cmd, msg)
		return exitUsage
	}
	if *project == "" {
		return usageErr("--project is required")
	}
	tok, err := adminToken(*token, *tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate keys:", err)
		return exitUsage
	}
	tlsCfg, err := tlsclient.Config(tlsclient.Files{CAFile: *caFile, CertFile: *clientCert, KeyFile: *clientKey})
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate keys: --ca-file/--client-cert/--client-key:", err)
		return exitUsage
	}
	c := &keysClient{base: strings.TrimRight(*adminURL, "/"), token: tok, http: tlsclient.HTTPClient(tlsCfg, *timeout)}
	keysPath := "/v1/projects/" + url.PathEscape(*project) + "/keys"
	keyPath := keysPath + "/" + url.PathEscape(*kid)
	if *kid == "." || *kid == ".." {
		// Registered by an older version; no path segment can carry it.
		keyPath = "/v1/projects/" + url.PathEscape(*project) + "/key?kid=" + url.QueryEscape(*kid)
	}
	needKID := func() bool { return *kid != "" }

	switch cmd {
	case "add":
		if *pubFile == "" {
			return usageErr("--public-key is required")
		}
		raw, err := os.ReadFile(*pubFile)
		if err != nil {
			fmt.Fprintln(stderr, "jwtgate keys add:", err)
			return exitError
		}
		body := map[string]any{"label": *label}
		if *kid != "" {
			body["kid"] = *kid
		}
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
			body["jwk"] = json.RawMessage(t)
		} else {
			body["public_key"] = string(raw)
		}
		return c.do(stdout, stderr, http.MethodPost, keysPath, body)
	case "generate":
		if *outFile == "" {
			return usageErr("--out FILE is required: the private key is returned once and written there")
		}
		body := map[string]any{"label": *label}
		if *kid != "" {
			body["kid"] = *kid
		}
		if fs.Changed("bits") {
			body["bits"] = *bits
		}
		return c.generate(stdout, stderr, keysPath+":generate", body, *outFile)
	case "list":
		return c.do(stdout, stderr, http.MethodGet, keysPath, nil)
	case "get":
		if !needKID() {
			return usageErr("--kid is required")
		}
		return c.do(stdout, stderr, http.MethodGet, keyPath, nil)
	case "update":
		if !needKID() {
			return usageErr("--kid is required")
		}
		body := map[string]any{}
		if fs.Changed("label") {
			body["label"] = *label
		}
		if *status != "" {
			body["status"] = *status
		}
		if len(body) == 0 {
			return usageErr("give --label and/or --status")
		}
		return c.do(stdout, stderr, http.MethodPatch, keyPath, body)
	case "delete":
		if !needKID() {
			return usageErr("--kid is required")
		}
		return c.do(stdout, stderr, http.MethodDelete, keyPath, nil)
	}
	fmt.Fprintf(stderr, "jwtgate keys: unknown command %q\n\n%s", cmd, keysUsage)
	return exitUsage
}

// adminToken resolves the admin token: flag, file flag, then the
// environment (applied to the flags already), then the default data dir.
func adminToken(token, file string) (string, error) {
	if token != "" {
		return token, nil
	}
	if file == "" {
		def := filepath.Join("jwtgate-data", "admin-token")
		if _, err := os.Stat(def); err != nil {
			return "", errors.New("no admin token: use --admin-token-file (the path `jwtgate serve` printed), --admin-token or JWTGATE_ADMIN_TOKEN")
		}
		file = def
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", errors.New("reading the admin token: " + err.Error())
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", errors.New("the admin token file " + file + " is empty")
	}
	return t, nil
}

func (c *keysClient) do(stdout, stderr io.Writer, method, path string, body any) int {
	raw, status, code := c.call(stderr, method, path, body)
	if code != exitOK {
		return code
	}
	if status == http.StatusNoContent {
		fmt.Fprintln(stdout, "deleted")
		return exitOK
	}
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") != nil {
		stdout.Write(raw)
		return exitOK
	}
	out.WriteByte('\n')
	stdout.Write(out.Bytes())
	return exitOK
}

// generate asks the server for a key pair and writes its private key to
// out (created exclusively, mode 0600, before the request: a file that
// cannot be written is found before a key is made). It prints the kid.
func (c *keysClient) generate(stdout, stderr io.Writer, path string, body any, out string) int {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		fmt.Fprintf(stderr, "jwtgate keys generate: --out %s exists; it is never overwritten: give a new file name\n", out)
		return exitError
	}
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate keys generate: --out: %v\n", err)
		return exitError
	}
	raw, _, code := c.call(stderr, http.MethodPost, path, body)
	if code != exitOK {
		f.Close()
		os.Remove(out)
		return code
	}
	defer clear(raw)
	var resp struct {
		KID        string `json:"kid"`
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil || resp.KID == "" || !strings.Contains(resp.PrivateKey, "PRIVATE KEY") {
		f.Close()
		os.Remove(out)
		fmt.Fprintln(stderr, "jwtgate keys generate: the server's answer has no kid and private key; is the admin URL a jwtgate admin listener?")
		return exitError
	}
	_, werr := f.WriteString(resp.PrivateKey)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(out)
		fmt.Fprintf(stderr, "jwtgate keys generate: writing %s: %v\nThe key %s is registered but its private key is lost: delete it (jwtgate keys delete --kid %s) and generate again.\n", out, err, resp.KID, resp.KID)
		return exitError
	}
	fmt.Fprintf(stderr, "private key written to %s (mode 0600); jwtgate keeps only the public key, so keep this file safe\n", out)
	fmt.Fprintln(stdout, resp.KID)
	return exitOK
}

// call sends one admin request; on an HTTP or API error it prints the
// cause and returns a non-zero exit code.
func (c *keysClient) call(stderr io.Writer, method, path string, body any) ([]byte, int, int) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			fmt.Fprintln(stderr, "jwtgate keys:", err)
			return nil, 0, exitError
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate keys:", err)
		return nil, 0, exitError
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate keys:", err)
		return nil, 0, exitError
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate keys:", err)
		return nil, 0, exitError
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error, Message string }
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			fmt.Fprintf(stderr, "jwtgate keys: %d %s: %s\n", resp.StatusCode, e.Error, e.Message)
		} else {
			fmt.Fprintf(stderr, "jwtgate keys: %s\n", resp.Status)
		}
		return nil, resp.StatusCode, exitError
	}
	return raw, resp.StatusCode, exitOK
}
