package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/engine"
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
		keyFiles    = fs.StringArray("key-file", nil, "PEM private key to sign with (repeatable) instead of generating")
		adminURL    = fs.String("admin-url", "http://127.0.0.1:8081", "jwtgate admin API base URL")
		adminToken  = fs.String("admin-token", "", "admin bearer token (else --admin-token-file, else $JWTGATE_ADMIN_TOKEN)")
		adminFile   = fs.String("admin-token-file", "", "file holding the admin bearer token")
		noRegister  = fs.Bool("no-register", false, "do not register the keys (they must already be registered under their kids)")
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
		fmt.Fprintf(stderr, "usage: loadgen mint --output FILE [flags]\n\nRegisters keys with a jwtgate admin API and writes Vegeta JSON targets\n(one per line) carrying tokens in a class mix, each with its expected\nverdict in the %s header.\n\n%s", loadgen.ExpectHeader, fs.FlagUsages())
	}
	if ok, code := parse(fs, args, stderr); !ok {
		return code
	}
	if *output == "" {
		return fail(stderr, "mint", errors.New("--output is required"))
	}
	needInactive := mix.Has(loadgen.Class(engine.CodeKeyInactive))
	var ring *loadgen.Keyring
	var err error
	if len(*keyFiles) > 0 {
		ring, err = loadgen.LoadKeyring(*project, *keyFiles, needInactive)
	} else {
		fmt.Fprintf(stderr, "generating %d RSA-%d keys...\n", *nkeys+btoi(needInactive), *bits)
		ring, err = loadgen.GenerateKeyring(*project, *nkeys, *bits, needInactive)
	}
	if err != nil {
		return fail(stderr, "mint", err)
	}
	if !*noRegister {
		tok, err := readAdminToken(*adminToken, *adminFile)
		if err != nil {
			return fail(stderr, "mint", err)
		}
		tlsCfg, err := caFileConfig(*caFile)
		if err != nil {
			return fail(stderr, "mint", err)
		}
		admin := &loadgen.Admin{URL: *adminURL, Token: tok, AllowRemote: *allowRemote, Client: tlsclient.HTTPClient(tlsCfg, 10*time.Second)}
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

// readAdminToken takes the token from the flag, else the file, else
// $JWTGATE_ADMIN_TOKEN.
func readAdminToken(tok, file string) (string, error) {
	if tok != "" {
		return tok, nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("admin token file %s is empty", file)
	}
	if t := os.Getenv("JWTGATE_ADMIN_TOKEN"); t != "" {
		return t, nil
	}
	return "", errors.New("no admin token: give --admin-token, --admin-token-file or $JWTGATE_ADMIN_TOKEN (or --no-register)")
}
