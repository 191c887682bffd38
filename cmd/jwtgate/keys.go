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

	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/jwtgate/jwtgate/internal/tlsclient"
)

const keysUsage = `Usage: jwtgate keys <command> --project ID [flags]

Manages keys over the admin API.

Commands:
%s
Run "jwtgate keys <command> --help" for a command's flags and an example.

The admin API is at --admin-url or $JWTGATE_ADMIN_URL (default
http://127.0.0.1:8081). The admin token comes from --admin-token,
--admin-token-file, $JWTGATE_ADMIN_TOKEN, $JWTGATE_ADMIN_TOKEN_FILE, or
./jwtgate-data/admin-token.
`

// keysCommand is one "jwtgate keys" subcommand: its help and the flags it
// takes beyond the common ones (admin URL, token and TLS, --project,
// --timeout). To add a subcommand, add an entry here and a case in
// runKeys; its --help is made from the entry.
type keysCommand struct {
	name, summary, args, about, example string
	flags                               []string // of: kid, label, status, public-key, out, bits
}

var keysCommands = []keysCommand{
	{name: "add", summary: "register a public key", args: "--public-key FILE [--kid K] [--label L]",
		about:   "A private key is refused here, before anything is sent.",
		example: "jwtgate keys add --project acme --public-key acme.pub.pem --kid acme-2026 --label prod",
		flags:   []string{"public-key", "kid", "label"}},
	{name: "generate", summary: "have the server make a key pair", args: "--out FILE [--label L] [--bits N] [--kid K]",
		about:   "Writes the private key to --out (PEM, mode 0600; an existing file is never\noverwritten) and prints the kid. The server keeps only the public key: the\nprivate key cannot be downloaded again.",
		example: "jwtgate keys generate --project acme --label prod --out acme-prod.pem",
		flags:   []string{"out", "bits", "kid", "label"}},
	{name: "list", summary: "list the project's keys", example: "jwtgate keys list --project acme"},
	{name: "get", summary: "show one key", args: "--kid K", example: "jwtgate keys get --project acme --kid acme-2026", flags: []string{"kid"}},
	{name: "update", summary: "change a key's label or status", args: "--kid K [--label L] [--status active|inactive]",
		about: "--status inactive stops the key at once, also for tokens already cached.\n" +
			"It is refused (409 key_in_use) while the key verified a token within max\n" +
			"TTL + leeway; --force overrides that and the audit trail records it.",
		example: "jwtgate keys update --project acme --kid acme-2026 --status inactive", flags: []string{"kid", "label", "status", "force"}},
	{name: "delete", summary: "delete a key", args: "--kid K [--force]", example: "jwtgate keys delete --project acme --kid acme-2026", flags: []string{"kid", "force"}},
	{name: "rotate", summary: "rotate keys: register the new key and print the plan, or --finish", args: "(--public-key FILE [--kid K] [--label L] | --finish [--force])",
		about: "With --public-key: registers the new key and prints the plan. With --finish:\n" +
			"deactivates every active key older than the newest active one, once none\n" +
			"has verified a token for max TTL + leeway (the server's guardrail), else\n" +
			"says when it will be safe (exit 1). It refuses while the newest key has\n" +
			"verified no token yet (traffic has not moved). --force overrides both; the\n" +
			"audit trail records it. Deactivation is reversible; delete old keys later.",
		example: "jwtgate keys rotate --project acme --public-key acme-2027.pub.pem --kid acme-2027\n  jwtgate keys rotate --project acme --finish",
		flags:   []string{"public-key", "kid", "label", "finish", "force"}},
	{name: "import-jwks", summary: "keep the project's keys in step with a JWKS URL", args: "--url URL [--refresh 5m] [--grace 24h]",
		about: "Sets (or changes) the project's JWKS source and fetches it at once; prints\n" +
			"the source's status (imported kids, refused keys, last error). Its RS256\n" +
			"keys are registered with label jwks-import; keys it stops publishing are\n" +
			"deactivated after --grace and deleted after another --grace. The URL\n" +
			"must be https:// on a public address. Exit 1 when the fetch failed.",
		example: "jwtgate keys import-jwks --project acme --url https://idp.example.com/.well-known/jwks.json",
		flags:   []string{"url", "refresh", "grace"}},
	{name: "jwks-status", summary: "show the project's JWKS source and its last fetch", example: "jwtgate keys jwks-status --project acme"},
	{name: "jwks-remove", summary: "stop importing from the project's JWKS URL (its keys stay)", example: "jwtgate keys jwks-remove --project acme"},
}

func keysUsageText() string {
	var b strings.Builder
	for _, c := range keysCommands {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	return fmt.Sprintf(keysUsage, b.String())
}

type keysClient struct {
	base  string
	token string
	http  *http.Client
}

func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, keysUsageText())
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return exitOK
		}
		return exitUsage
	}
	cmd := args[0]
	var spec *keysCommand
	for i := range keysCommands {
		if keysCommands[i].name == cmd {
			spec = &keysCommands[i]
		}
	}
	if spec == nil {
		fmt.Fprintf(stderr, "jwtgate keys: unknown command %q\n\n%s", cmd, keysUsageText())
		return exitUsage
	}
	prog := "jwtgate keys " + cmd
	fs := pflag.NewFlagSet(prog, pflag.ContinueOnError)
	project := fs.String("project", "", "project `ID` (required)")
	kid, label, status, pubFile, outFile, bits := new(string), new(string), new(string), new(string), new(string), new(int)
	force, finish := new(bool), new(bool)
	jwksURL, refresh, grace := new(string), new(string), new(string)
	for _, f := range spec.flags {
		switch f {
		case "kid":
			fs.StringVar(kid, "kid", "", "key ID")
		case "label":
			fs.StringVar(label, "label", "", "key label")
		case "status":
			fs.StringVar(status, "status", "", "key status: active or inactive")
		case "public-key":
			fs.StringVar(pubFile, "public-key", "", "public key `FILE`: PEM (PUBLIC KEY or RSA PUBLIC KEY) or a JWK JSON object")
		case "out":
			fs.StringVar(outFile, "out", "", "`FILE` to write the generated private key to, mode 0600; must not exist")
		case "bits":
			fs.IntVar(bits, "bits", 0, "RSA modulus size of the generated pair (default: the server's, 2048)")
		case "force":
			fs.BoolVar(force, "force", false, "deactivate or delete even a key that verified a token within max TTL + leeway (recorded in the audit trail)")
		case "finish":
			fs.BoolVar(finish, "finish", false, "deactivate the older active key(s) instead of registering a new one")
		case "url":
			fs.StringVar(jwksURL, "url", "", "https:// `URL` of the project's JWK Set (required)")
		case "refresh":
			fs.StringVar(refresh, "refresh", "5m", "how often the JWKS is fetched (1s to 24h; a longer Cache-Control max-age wins)")
		case "grace":
			fs.StringVar(grace, "grace", "24h", "how long a key may be missing from the JWKS before it is deactivated, and then deleted (0s to 720h)")
		}
	}
	adminURL := fs.String("admin-url", defaultAdminURL, "base `URL` of the admin listener (env JWTGATE_ADMIN_URL)")
	token := fs.String("admin-token", "", "admin bearer token (env JWTGATE_ADMIN_TOKEN)")
	tokenFile := fs.String("admin-token-file", "", "`FILE` holding the admin token (env JWTGATE_ADMIN_TOKEN_FILE; default ./jwtgate-data/admin-token)")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	caFile := fs.String("ca-file", "", "PEM CA certificates `FILE` to trust for an https:// --admin-url (env JWTGATE_CA_FILE); default: the system's")
	clientCert := fs.String("client-cert", "", "PEM client certificate `FILE`, for an admin listener started with --admin-client-ca (env JWTGATE_CLIENT_CERT)")
	clientKey := fs.String("client-key", "", "PEM private key `FILE` of --client-cert (env JWTGATE_CLIENT_KEY)")
	fs.SortFlags = false
	fs.Usage = func() {
		about := "\n"
		if spec.about != "" {
			about = spec.about + "\n\n"
		}
		line := strings.TrimSpace("jwtgate keys " + cmd + " --project ID " + spec.args)
		fmt.Fprintf(stderr, "Usage: %s\n\n%s.\n%sExample:\n  %s\n\nFlags:\n%s",
			line, strings.ToUpper(spec.summary[:1])+spec.summary[1:], about, spec.example, cli.FlagUsages(fs))
	}
	if ok, code := cli.Parse(fs, prog, args[1:], stderr, false); !ok {
		return code
	}
	if err := applyEnv(fs, "project", "kid", "label", "status", "public-key", "timeout", "out", "bits", "force", "finish", "url", "refresh", "grace"); err != nil {
		return cli.UsageError(stderr, prog, err.Error())
	}
	usageErr := func(msg string) int { return cli.UsageError(stderr, prog, msg) }
	if *project == "" {
		return usageErr("--project is required")
	}
	base, err := checkAdminURL(*adminURL)
	if err != nil {
		return usageErr(err.Error())
	}
	needKID := func() bool { return *kid != "" }
	// Checks that need no server come first: a private key is refused
	// here, before anything is sent.
	var addBody map[string]any
	if cmd == "rotate" {
		if *finish && (*pubFile != "" || *kid != "") {
			return usageErr("--finish takes no --public-key or --kid: it deactivates every active key older than the newest")
		}
		if !*finish && *pubFile == "" {
			return usageErr("--public-key is required (or --finish to retire the old key)")
		}
	}
	if cmd == "add" || (cmd == "rotate" && !*finish) {
		if *pubFile == "" {
			return usageErr("--public-key is required")
		}
		raw, err := os.ReadFile(*pubFile)
		if err != nil {
			fmt.Fprintf(stderr, "%s: reading --public-key: %v\n", prog, err)
			return exitError
		}
		if what := privateKeyMaterial(raw); what != "" {
			fmt.Fprintf(stderr, "%s: %s holds %s; nothing was sent. Register the public key only: jwtgate keygen writes it as <name>.pub.pem, or run: openssl pkey -in %s -pubout\n", prog, *pubFile, what, *pubFile)
			return exitError
		}
		addBody = map[string]any{"label": *label}
		if *kid != "" {
			addBody["kid"] = *kid
		}
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
			addBody["jwk"] = json.RawMessage(t)
		} else {
			addBody["public_key"] = string(raw)
		}
	}
	if cmd == "import-jwks" {
		if *jwksURL == "" {
			return usageErr("--url is required: the https:// URL of the project's JWK Set")
		}
		for _, d := range []struct{ flag, val string }{{"--refresh", *refresh}, {"--grace", *grace}} {
			if _, err := time.ParseDuration(d.val); err != nil {
				return usageErr(d.flag + " " + d.val + ": not a duration (e.g. 5m, 24h)")
			}
		}
	}
	if cmd == "generate" && *outFile == "" {
		return usageErr("--out FILE is required: the private key is returned once and written there")
	}
	tok, err := adminToken(*token, *tokenFile)
	if err != nil {
		return usageErr(err.Error())
	}
	tlsCfg, err := tlsclient.Config(tlsclient.Files{CAFile: *caFile, CertFile: *clientCert, KeyFile: *clientKey})
	if err != nil {
		return usageErr("--ca-file/--client-cert/--client-key: " + err.Error())
	}
	c := &keysClient{base: base, token: tok, http: tlsclient.HTTPClient(tlsCfg, *timeout)}
	keysPath := "/v1/projects/" + url.PathEscape(*project) + "/keys"
	keyPath := keysPath + "/" + url.PathEscape(*kid)
	if *kid == "." || *kid == ".." {
		// Registered by an older version; no path segment can carry it.
		keyPath = "/v1/projects/" + url.PathEscape(*project) + "/key?kid=" + url.QueryEscape(*kid)
	}

	forceQuery := ""
	if *force {
		forceQuery = "?force=true"
		if strings.Contains(keyPath, "?") {
			forceQuery = "&force=true"
		}
	}

	switch cmd {
	case "add":
		return c.do(stdout, stderr, http.MethodPost, keysPath, addBody)
	case "rotate":
		if *finish {
			return c.rotateFinish(stdout, stderr, *project, *force)
		}
		return c.rotateStart(stdout, stderr, *project, addBody)
	case "generate":
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
	case "import-jwks":
		return c.importJWKS(stdout, stderr, jwksSourcePath(*project), map[string]any{"url": *jwksURL, "refresh": *refresh, "grace": *grace})
	case "jwks-status":
		return c.do(stdout, stderr, http.MethodGet, jwksSourcePath(*project), nil)
	case "jwks-remove":
		return c.do(stdout, stderr, http.MethodDelete, jwksSourcePath(*project), nil)
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
		return c.do(stdout, stderr, http.MethodPatch, keyPath+forceQuery, body)
	case "delete":
		if !needKID() {
			return usageErr("--kid is required")
		}
		return c.do(stdout, stderr, http.MethodDelete, keyPath+forceQuery, nil)
	}
	return usageErr("this command has no implementation")
}

const defaultAdminURL = "http://127.0.0.1:8081"

// checkAdminURL checks that u is an http(s) URL with a host, and returns
// it without a trailing slash.
func checkAdminURL(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("--admin-url %q: want an http:// or https:// URL with a host, e.g. http://127.0.0.1:8081", u)
	}
	return strings.TrimRight(u, "/"), nil
}

// privateKeyMaterial says what private key material raw holds ("" when
// none), so that it is never sent to the server.
func privateKeyMaterial(raw []byte) string {
	if bytes.Contains(raw, []byte("PRIVATE KEY-----")) {
		return "a private key (PEM)"
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		var m map[string]json.RawMessage
		if json.Unmarshal(t, &m) == nil {
			for _, k := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := m[k]; ok {
					return "a private key (a JWK with the private member \"" + k + "\")"
				}
			}
		}
	}
	return ""
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

// looksLikeVerifyListener reports whether an error answer came from
// jwtgate's verify listener rather than the admin listener: the verify
// listener has no key routes (404 "no such route", which the admin
// listener never answers to an authorized key route) and its 401s are
// verify verdicts ("valid":false, realm "jwtgate").
func looksLikeVerifyListener(resp *http.Response, body []byte) bool {
	if resp.StatusCode == http.StatusNotFound && bytes.Contains(body, []byte(`"no such route"`)) {
		return true
	}
	return resp.StatusCode == http.StatusUnauthorized && bytes.Contains(body, []byte(`"valid":false`))
}

// call sends one admin request; on an HTTP or API error it prints the
// cause and returns a non-zero exit code.
func (c *keysClient) call(stderr io.Writer, method, path string, body any) ([]byte, int, int) {
	raw, status, err := c.request(method, path, body)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate keys:", err)
		return nil, status, exitError
	}
	return raw, status, exitOK
}

func jwksSourcePath(project string) string {
	return "/v1/projects/" + url.PathEscape(project) + "/jwks-source"
}

// importJWKS sets the JWKS source and prints its status; exit 1 when the
// first fetch failed (the source stays set and is retried).
func (c *keysClient) importJWKS(stdout, stderr io.Writer, path string, body any) int {
	raw, _, code := c.call(stderr, http.MethodPut, path, body)
	if code != exitOK {
		return code
	}
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") == nil {
		out.WriteByte('\n')
		stdout.Write(out.Bytes())
	} else {
		stdout.Write(raw)
	}
	var st struct {
		LastError *string           `json:"last_error"`
		KeyErrors map[string]string `json:"key_errors"`
	}
	_ = json.Unmarshal(raw, &st)
	for kid, msg := range st.KeyErrors {
		fmt.Fprintf(stderr, "jwtgate keys import-jwks: key %s not imported: %s\n", kid, msg)
	}
	if st.LastError != nil {
		fmt.Fprintf(stderr, "jwtgate keys import-jwks: the source is set, but fetching it failed: %s (it is retried; see jwtgate keys jwks-status)\n", *st.LastError)
		return exitError
	}
	return exitOK
}
