package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/spf13/pflag"
)

func runMint(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("jwtgate mint", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", "", "private key PEM file (from jwtgate keygen)")
	kid := fs.String("kid", "", "kid of the registered public key")
	project := fs.String("project", "", "project the token is for (its aud)")
	ttl := fs.Duration("ttl", 5*time.Minute, "lifetime: exp = iat + ttl")
	sub := fs.String("sub", "", "sub claim (omitted when empty)")
	claims := fs.StringArray("claim", nil, "extra string claim name=value (repeatable, e.g. groupRef=g1)")
	rawClaims := fs.StringArray("claim-json", nil, "extra claim name=<JSON value> (repeatable, e.g. tier=3)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: jwtgate mint --key key.pem --kid KID --project ID [flags]\n\nSigns an RS256 token, as the customer's own server does, and prints it.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *keyPath == "" || *kid == "" || *project == "" {
		fmt.Fprintln(stderr, "jwtgate mint: --key, --kid and --project are required")
		return exitUsage
	}
	if *ttl < time.Second {
		fmt.Fprintln(stderr, "jwtgate mint: --ttl must be at least 1s")
		return exitUsage
	}
	iat := time.Now().Unix()
	payload := map[string]any{"aud": []string{*project}, "iat": iat, "exp": iat + int64(ttl.Seconds())}
	if *sub != "" {
		payload["sub"] = *sub
	}
	for _, c := range *claims {
		name, val, ok := strings.Cut(c, "=")
		if !ok || name == "" {
			fmt.Fprintf(stderr, "jwtgate mint: --claim %q: want name=value\n", c)
			return exitUsage
		}
		payload[name] = val
	}
	for _, c := range *rawClaims {
		name, val, ok := strings.Cut(c, "=")
		if !ok || name == "" || !json.Valid([]byte(val)) {
			fmt.Fprintf(stderr, "jwtgate mint: --claim-json %q: want name=<JSON value>\n", c)
			return exitUsage
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
