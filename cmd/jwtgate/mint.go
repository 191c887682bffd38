package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/spf13/pflag"
)

func runMint(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("jwtgate mint", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", "", "private key PEM `FILE` (from jwtgate keygen)")
	kid := fs.String("kid", "", "kid of the registered public key")
	project := fs.String("project", "", "project the token is for (its aud)")
	ttl := fs.Duration("ttl", 5*time.Minute, "lifetime: exp = iat + ttl")
	sub := fs.String("sub", "", "sub claim (omitted when empty)")
	iss := fs.String("iss", "", "iss claim (omitted when empty)")
	jti := fs.String("jti", "", "jti claim (omitted when empty)")
	claims := fs.StringArray("claim", nil, "extra string claim (repeatable, e.g. groupRef=g1); not a registered claim")
	rawClaims := fs.StringArray("claim-json", nil, "extra claim with a JSON value (repeatable, e.g. tier=3); not a registered claim")
	fs.Lookup("claim").Usage = "extra string claim `name=value` (repeatable, e.g. groupRef=g1); registered claims have their own flags"
	fs.Lookup("claim-json").Usage = "extra claim `name=JSON` (repeatable, e.g. tier=3); registered claims have their own flags"
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: jwtgate mint --key FILE --kid KID --project ID [flags]\n\nSigns an RS256 token, as the customer's own server does, and prints it.\nThe registered claims come from flags: aud from --project, iat (now) and\nexp from --ttl, sub, iss and jti from theirs; --claim and --claim-json\nadd tenant claims.\n\nExample:\n  jwtgate mint --key acme.pem --kid acme-2026 --project acme --ttl 5m --sub alice --claim groupRef=g1\n\nFlags:\n%s", cli.FlagUsages(fs))
	}
	if ok, code := cli.Parse(fs, "jwtgate mint", args, stderr, false); !ok {
		return code
	}
	const prog = "jwtgate mint"
	if *keyPath == "" || *kid == "" || *project == "" {
		return cli.UsageError(stderr, prog, "--key, --kid and --project are required")
	}
	if *ttl < time.Second {
		return cli.UsageError(stderr, prog, fmt.Sprintf("--ttl %s: want at least 1s", *ttl))
	}
	if *ttl > engine.DefaultMaxTTL {
		fmt.Fprintf(stderr, "jwtgate mint: warning: --ttl %s is longer than the server's default --max-ttl (%s): a server with the default refuses this token with ttl_exceeded\n", *ttl, engine.DefaultMaxTTL)
	}
	iat := time.Now().Unix()
	payload := map[string]any{"aud": []string{*project}, "iat": iat, "exp": iat + int64(ttl.Seconds())}
	for name, v := range map[string]string{"sub": *sub, "iss": *iss, "jti": *jti} {
		if v != "" {
			payload[name] = v
		}
	}
	for _, c := range *claims {
		name, val, ok := strings.Cut(c, "=")
		if !ok || name == "" {
			return cli.UsageError(stderr, prog, fmt.Sprintf("--claim %q: want name=value", c))
		}
		if msg := registeredClaim(name); msg != "" {
			return cli.UsageError(stderr, prog, fmt.Sprintf("--claim %s: %s", c, msg))
		}
		payload[name] = val
	}
	for _, c := range *rawClaims {
		name, val, ok := strings.Cut(c, "=")
		if !ok || name == "" || !json.Valid([]byte(val)) {
			return cli.UsageError(stderr, prog, fmt.Sprintf("--claim-json %q: want name=<JSON value>", c))
		}
		if msg := registeredClaim(name); msg != "" {
			return cli.UsageError(stderr, prog, fmt.Sprintf("--claim-json %s: %s", c, msg))
		}
		if _, dup := payload[name]; dup {
			return cli.UsageError(stderr, prog, fmt.Sprintf("--claim-json %s: claim %q is already set by --claim", c, name))
		}
		payload[name] = json.RawMessage(val)
	}
	priv, err := enginetest.LoadPrivateKey(*keyPath)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate mint: reading the private key:", err)
		return exitError
	}
	fmt.Fprintln(stdout, enginetest.SignRS256(priv, enginetest.Header(*kid), payload))
	return exitOK
}

// registeredClaim says why a registered claim (RFC 7519) cannot be set
// with --claim or --claim-json, naming the flag that sets it; "" for any
// other name.
func registeredClaim(name string) string {
	switch name {
	case "aud":
		return "aud is set from --project"
	case "exp", "iat":
		return name + " is set from the time and --ttl (exp = iat + ttl)"
	case "nbf":
		return "nbf is a registered claim; jwtgate mint does not set it"
	case "sub", "iss", "jti":
		return name + " is a registered claim: use --" + name
	}
	return ""
}
