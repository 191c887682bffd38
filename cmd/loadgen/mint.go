package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/jwtgate/jwtgate/internal/tlsclient"
	"github.com/jwtgate/jwtgate/loadgen"
	"github.com/spf13/pflag"
)

func runMint(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("mint", pflag.ContinueOnError)
	mix, _ := loadgen.ParseMix(loadgen.DefaultMix)
	var (
		project     = fs.String("project", "loadgen", "project the keys are registered to (tokens' aud)")
		nkeys       = fs.Int("keys", 2, "number of RSA keys to generate (ignored with --key-file)")
		bits        = fs.Int("key-bits", 2048, "size of generated keys")
		keyFiles    = fs.StringArray("key-file", nil, "PEM private key `FILE` to sign with (repeatable) instead of generating")
		kids        = fs.StringArray("kid", nil, "kid of each --key-file, in the same order (repeatable; default: a fresh lg-* kid); with --no-register, the kids they are registered under")
		adminURL    = fs.String("admin-url", defaultAdminURL(), "jwtgate admin API base `URL` (default $JWTGATE_ADMIN_URL, else http://127.0.0.1:8081)")
		adminToken  = fs.String("admin-token", "", "admin bearer token (else --admin-token-file, $JWTGATE_ADMIN_TOKEN, $JWTGATE_ADMIN_TOKEN_FILE, ./jwtgate-data/admin-token)")
		adminFile   = fs.String("admin-token-file", "", "`FILE` holding the admin bearer token")
		noRegister  = fs.Bool("no-register", false, "do not register the keys (they must already be registered under their kids: give --kid)")
		url         = fs.String("url", "http://127.0.0.1:8080/v1/verify", "verify URL written into each target")
		count       = fs.Int("count", 10000, "number of targets to write")
		unique      = fs.Int("unique", 0, "distinct valid tokens (the rest repeat them); 0 = all distinct")
		ttl         = fs.Duration("ttl", 0, "lifetime of valid tokens (default: --server-max-ttl)")
		claims      = fs.StringToString("claim", nil, "extra string claim in every token, e.g. groupRef=g1 (repeatable)")
		maxTTL      = fs.Duration("server-max-ttl", engine.DefaultMaxTTL, "the server's --max-ttl (ttl_exceeded tokens exceed it)")
		leeway      = fs.Duration("server-leeway", engine.DefaultLeeway, "the server's --leeway")
		maxTok      = fs.Int("server-max-token-bytes", engine.DefaultMaxTokenBytes, "the server's --max-token-bytes (token_too_large tokens exceed it)")
		workers     = fs.Int("workers", runtime.GOMAXPROCS(0), "signing goroutines")
		output      = fs.StringP("output", "o", "", "target file to write (required); its manifest goes to FILE.manifest.json")
		allowRemote = fs.Bool("allow-remote", false, "allow a non-loopback --admin-url")
		caFile      = caFileFlag(fs, "an https:// --admin-url")
	)
	fs.Var(&mix, "mix", "class mix: class=weight,... (classes: valid and every verify error code of docs/API.md)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadgen mint --output FILE [flags]\n\nRegisters keys with a jwtgate admin API and writes Vegeta JSON targets\n(one per line) carrying tokens in a class mix, each with its expected\nverdict in the %s header. Generated keys get lg-* kids; \"loadgen clean\n-t FILE\" deletes them from the server afterwards.\n\nExample:\n  loadgen mint --admin-token-file ./jwtgate-data/admin-token --project demo --count 20000 -o targets.jsonl\n\n%s", loadgen.ExpectHeader, cli.FlagUsages(fs))
	}
	if ok, code := parse(fs, args, stderr); !ok {
		return code
	}
	if *output == "" {
		return usageFail(stderr, "mint", errors.New("--output is required"))
	}
	if len(*kids) > 0 && len(*kids) != len(*keyFiles) {
		return usageFail(stderr, "mint", fmt.Errorf("--kid given %d times for %d --key-file: give one --kid per --key-file, in the same order", len(*kids), len(*keyFiles)))
	}
	for _, k := range *kids {
		if !engine.ValidKID(k) {
			return usageFail(stderr, "mint", fmt.Errorf("--kid %q: must match ^[A-Za-z0-9._-]{1,128}$", k))
		}
	}
	if *noRegister && len(*kids) == 0 {
		return usageFail(stderr, "mint", errors.New("--no-register needs the kids the keys are registered under: give --key-file and --kid for each"))
	}
	if *count < 1 || *count > loadgen.MaxCount {
		return usageFail(stderr, "mint", fmt.Errorf("--count %d is out of range: want 1 to %d", *count, loadgen.MaxCount))
	}
	if *ttl != 0 && (*ttl < time.Second || *ttl > *maxTTL) {
		return usageFail(stderr, "mint", fmt.Errorf("--ttl %s is out of range: want 1s to --server-max-ttl (%s)", *ttl, *maxTTL))
	}
	if len(*keyFiles) == 0 {
		if *nkeys < 1 || *nkeys > loadgen.MaxKeys {
			return usageFail(stderr, "mint", fmt.Errorf("--keys %d is out of range: want 1 to %d", *nkeys, loadgen.MaxKeys))
		}
		if *bits < 2048 || *bits > 4096 {
			return usageFail(stderr, "mint", fmt.Errorf("--key-bits %d is out of range: want 2048 to 4096", *bits))
		}
	}
	// Everything that can be checked without the server or a key comes
	// first: no key is generated for a run that cannot register it.
	var admin *loadgen.Admin
	if !*noRegister {
		if _, err := checkAdminURL(*adminURL, *allowRemote); err != nil {
			return usageFail(stderr, "mint", err)
		}
		tok, err := readAdminToken(*adminToken, *adminFile)
		if err != nil {
			return usageFail(stderr, "mint", err)
		}
		tlsCfg, err := caFileConfig(*caFile)
		if err != nil {
			return usageFail(stderr, "mint", err)
		}
		admin = &loadgen.Admin{URL: *adminURL, Token: tok, AllowRemote: *allowRemote, Client: tlsclient.HTTPClient(tlsCfg, 10*time.Second)}
	}
	needInactive := mix.Has(loadgen.Class(engine.CodeKeyInactive))
	var ring *loadgen.Keyring
	var err error
	if len(*keyFiles) > 0 {
		ring, err = loadgen.LoadKeyring(*project, *keyFiles, needInactive)
		if err == nil {
			for i, k := range *kids {
				ring.Keys[i].KID = k
			}
		}
	} else {
		fmt.Fprintf(stderr, "generating %d RSA-%d keys...\n", *nkeys+btoi(needInactive), *bits)
		ring, err = loadgen.GenerateKeyring(*project, *nkeys, *bits, needInactive)
	}
	if err != nil {
		return fail(stderr, "mint", err)
	}
	if admin != nil {
		if err := loadgen.RegisterKeyring(ctx, admin, ring); err != nil {
			return fail(stderr, "mint", err)
		}
		fmt.Fprintf(stderr, "registered %d keys with %s (project %s)\n", len(ring.Keys), *adminURL, *project)
	}
	f, err := os.Create(*output)
	if err != nil {
		return fail(stderr, "mint", err)
	}
	man, err := loadgen.Mint(ctx, f, loadgen.MintConfig{
		Keyring: ring, Count: *count, Mix: mix, Unique: *unique, URL: *url, TTL: *ttl, Claims: *claims,
		ServerMaxTTL: *maxTTL, ServerLeeway: *leeway, ServerMaxTokenBytes: *maxTok, Workers: *workers,
		Progress: loadgen.ProgressBar(stderr, isTTY(stderr), 5*time.Second),
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*output)
		return fail(stderr, "mint", err)
	}
	mf, err := os.Create(loadgen.ManifestPath(*output))
	if err == nil {
		err = loadgen.WriteManifest(mf, man)
		if cerr := mf.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fail(stderr, "mint", err)
	}
	fmt.Fprintf(stdout, "minted %d targets (%s) to %s in %.2fs: %.0f tokens/s, %d RSA signatures (%.0f/s) on %d workers; valid until %s\n",
		man.Count, man.Mix, *output, man.Seconds, man.TokensPerSecond, man.Signatures, man.SignaturesPerSecond,
		man.Workers, man.ValidUntil.Format(time.RFC3339))
	return exitOK
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// defaultAdminURL is $JWTGATE_ADMIN_URL, else the admin listener's
// default address: what jwtgate keys uses.
func defaultAdminURL() string {
	if u := os.Getenv("JWTGATE_ADMIN_URL"); u != "" {
		return u
	}
	return "http://127.0.0.1:8081"
}

// checkAdminURL checks that u is an http(s) URL with a host, on loopback
// unless allowRemote.
func checkAdminURL(u string, allowRemote bool) (string, error) {
	p, err := neturl.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("--admin-url %q: want an http:// or https:// URL with a host, e.g. http://127.0.0.1:8081", u)
	}
	if !allowRemote {
		if err := loadgen.CheckLoopbackURL(u); err != nil {
			return "", fmt.Errorf("--admin-url: %w", err)
		}
	}
	return strings.TrimRight(u, "/"), nil
}

// defaultTokenFile is where jwtgate serve writes a generated admin token
// when run with its default --data-dir.
var defaultTokenFile = filepath.Join("jwtgate-data", "admin-token")

// readAdminToken finds the admin token as jwtgate keys does: the flag,
// else the file flag, else $JWTGATE_ADMIN_TOKEN, else
// $JWTGATE_ADMIN_TOKEN_FILE, else ./jwtgate-data/admin-token.
func readAdminToken(tok, file string) (string, error) {
	if tok != "" {
		return tok, nil
	}
	if file == "" {
		if t := os.Getenv("JWTGATE_ADMIN_TOKEN"); t != "" {
			return t, nil
		}
		file = os.Getenv("JWTGATE_ADMIN_TOKEN_FILE")
	}
	if file == "" {
		if _, err := os.Stat(defaultTokenFile); err != nil {
			return "", errors.New("no admin token: give --admin-token-file (the path jwtgate serve printed), --admin-token, $JWTGATE_ADMIN_TOKEN or $JWTGATE_ADMIN_TOKEN_FILE, or run from the directory holding ./jwtgate-data/admin-token (or --no-register)")
		}
		file = defaultTokenFile
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the admin token: %v", err)
	}
	if t := strings.TrimSpace(string(b)); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("admin token file %s is empty", file)
}
