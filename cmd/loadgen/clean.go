package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/jwtgate/jwtgate/internal/tlsclient"
	"github.com/jwtgate/jwtgate/loadgen"
	"github.com/spf13/pflag"
)

// runClean deletes the keys a mint run registered: the lg-* kids its
// manifest lists (keys named with --kid are the user's and are kept).
func runClean(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("clean", pflag.ContinueOnError)
	var (
		targets     = fs.StringP("targets", "t", "", "target `FILE` written by mint; its FILE.manifest.json names the keys (required)")
		adminURL    = fs.String("admin-url", defaultAdminURL(), "jwtgate admin API base `URL` (default $JWTGATE_ADMIN_URL, else http://127.0.0.1:8081)")
		adminToken  = fs.String("admin-token", "", "admin bearer token (else --admin-token-file, $JWTGATE_ADMIN_TOKEN, $JWTGATE_ADMIN_TOKEN_FILE, ./jwtgate-data/admin-token)")
		adminFile   = fs.String("admin-token-file", "", "`FILE` holding the admin bearer token")
		allowRemote = fs.Bool("allow-remote", false, "allow a non-loopback --admin-url")
		caFile      = caFileFlag(fs, "an https:// --admin-url")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadgen clean --targets FILE [flags]\n\nDeletes from the server the keys that \"loadgen mint\" generated and\nregistered for FILE: the lg-* kids its manifest lists. Keys you named\nwith --kid are never deleted. A key already gone is not an error; a key\nthat just verified tokens is deleted all the same (?force=true: these are\nloadgen's own test keys, not a rotation).\n\nExample:\n  loadgen clean -t targets.jsonl --admin-token-file ./jwtgate-data/admin-token\n\n%s", cli.FlagUsages(fs))
	}
	if ok, code := parse(fs, args, stderr); !ok {
		return code
	}
	if *targets == "" {
		return usageFail(stderr, "clean", errors.New("--targets is required"))
	}
	if _, err := checkAdminURL(*adminURL, *allowRemote); err != nil {
		return usageFail(stderr, "clean", err)
	}
	tok, err := readAdminToken(*adminToken, *adminFile)
	if err != nil {
		return usageFail(stderr, "clean", err)
	}
	tlsCfg, err := caFileConfig(*caFile)
	if err != nil {
		return usageFail(stderr, "clean", err)
	}
	f, err := os.Open(loadgen.ManifestPath(*targets))
	if err != nil {
		return fail(stderr, "clean", fmt.Errorf("reading the manifest of %s: %w", *targets, err))
	}
	man, err := loadgen.ReadManifest(f)
	f.Close()
	if err != nil {
		return fail(stderr, "clean", err)
	}
	kids := make([]string, 0, len(man.Keys))
	for _, k := range man.Keys {
		kids = append(kids, k.KID)
	}
	admin := &loadgen.Admin{URL: *adminURL, Token: tok, AllowRemote: *allowRemote, Client: tlsclient.HTTPClient(tlsCfg, 10*time.Second)}
	done, err := loadgen.UnregisterKeys(ctx, admin, man.Project, kids)
	if len(done) > 0 {
		fmt.Fprintf(stdout, "deleted %d keys from project %s: %s\n", len(done), man.Project, strings.Join(done, ", "))
	} else if err == nil {
		fmt.Fprintf(stdout, "no lg-* keys to delete in the manifest of %s\n", *targets)
	}
	if err != nil {
		return fail(stderr, "clean", err)
	}
	return exitOK
}
