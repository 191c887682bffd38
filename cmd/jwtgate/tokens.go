package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/pflag"

	"github.com/jwtgate/jwtgate/internal/cli"
)

const tokensUsage = `Usage: jwtgate tokens <command> [flags]

Manages scoped admin tokens over the admin API (needs the root admin token).
A scoped token is limited to one project: scope "read" may list and get its
keys; scope "write" may also add, update, delete and rotate them. It may not
manage tokens or read the audit trail.

Commands:
  create   make a token:   --project P --scope read|write [--label L]
           prints the token once: it is stored only as a hash
  list     list tokens:    [--project P]
  revoke   revoke a token: --id ID

Flags:
`

func runTokens(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, tokensUsage)
			return exitOK
		}
		fmt.Fprint(stderr, tokensUsage)
		return exitUsage
	}
	cmd := args[0]
	switch cmd {
	case "create", "list", "revoke":
	default:
		fmt.Fprintf(stderr, "jwtgate tokens: unknown command %q (want create, list or revoke)\n", cmd)
		return exitUsage
	}
	fs := pflag.NewFlagSet("jwtgate tokens "+cmd, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs)
	project := fs.String("project", "", "project ID")
	scope := fs.String("scope", "", "create: read or write")
	label := fs.String("label", "", "create: a label, e.g. who uses the token")
	id := fs.String("id", "", "revoke: the token's id (tok_...)")
	fs.Usage = func() { fmt.Fprint(stderr, tokensUsage+cli.FlagUsages(fs)) }
	if code, ok := parseFlags(fs, args[1:], stderr, "jwtgate tokens "+cmd, "project", "scope", "label", "id", "timeout"); !ok {
		return code
	}
	usageErr := func(msg string) int { return cli.UsageError(stderr, "jwtgate tokens "+cmd, msg) }
	c, err := af.client()
	if err != nil {
		fmt.Fprintf(stderr, "jwtgate tokens %s: %v\n", cmd, err)
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "jwtgate tokens %s: %v\n", cmd, err)
		return exitError
	}
	switch cmd {
	case "create":
		if *project == "" {
			return usageErr("--project is required")
		}
		if *scope != "read" && *scope != "write" {
			return usageErr(fmt.Sprintf("--scope must be read or write, not %q", *scope))
		}
		raw, err := c.send(http.MethodPost, "/v1/tokens", map[string]string{"project": *project, "scope": *scope, "label": *label})
		if err != nil {
			return fail(err)
		}
		printJSON(stdout, raw)
		fmt.Fprintln(stderr, "Keep the token now: it is shown only this once (the server stores only its hash).")
		return exitOK
	case "list":
		path := "/v1/tokens"
		if *project != "" {
			path += "?project=" + url.QueryEscape(*project)
		}
		raw, err := c.send(http.MethodGet, path, nil)
		if err != nil {
			return fail(err)
		}
		printJSON(stdout, raw)
		return exitOK
	default: // revoke
		if *id == "" {
			return usageErr("--id is required (see jwtgate tokens list)")
		}
		if _, err := c.send(http.MethodDelete, "/v1/tokens/"+url.PathEscape(*id), nil); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "revoked", *id)
		return exitOK
	}
}

const auditUsage = `Usage: jwtgate audit [flags]

Prints the audit trail of admin changes, newest first, one per line:
id, time, actor (root or token:<id>, system:<job>), action, project, kid or
token id, and "forced" when the rotation guardrail was overridden. Needs the
root admin token.

Actions: key.created, key.generated, key.imported, key.updated, key.deleted,
token.created, token.revoked.

Flags:
`

func runAudit(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("jwtgate audit", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs)
	project := fs.String("project", "", "only this project")
	kid := fs.String("kid", "", "only this key")
	action := fs.String("action", "", "only this action, e.g. key.deleted")
	since := fs.String("since", "", "only events at or after this RFC 3339 time")
	until := fs.String("until", "", "only events before this RFC 3339 time")
	limit := fs.Int("limit", 100, "most events to print (1 to 1000 per page)")
	cursor := fs.String("cursor", "", "continue after a previous page (its next cursor)")
	asJSON := fs.Bool("json", false, "print the API's JSON instead of lines")
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage+cli.FlagUsages(fs)) }
	if code, ok := parseFlags(fs, args, stderr, "jwtgate audit", "project", "kid", "action", "since", "until", "limit", "cursor", "json", "timeout"); !ok {
		return code
	}
	if *limit < 1 || *limit > 1000 {
		return cli.UsageError(stderr, "jwtgate audit", fmt.Sprintf("--limit must be from 1 to 1000, not %d", *limit))
	}
	c, err := af.client()
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate audit:", err)
		return exitUsage
	}
	q := url.Values{}
	for name, v := range map[string]string{"project": *project, "kid": *kid, "action": *action, "since": *since, "until": *until, "cursor": *cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	q.Set("limit", fmt.Sprint(*limit))
	raw, err := c.send(http.MethodGet, "/v1/audit?"+q.Encode(), nil)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate audit:", err)
		return exitError
	}
	if *asJSON {
		printJSON(stdout, raw)
		return exitOK
	}
	var page struct {
		Events []struct {
			ID     int64  `json:"id"`
			Time   string `json:"time"`
			Action string `json:"action"`
			Actor  struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			} `json:"actor"`
			Project string `json:"project"`
			KID     string `json:"kid"`
			TokenID string `json:"token_id"`
			Forced  bool   `json:"forced"`
		} `json:"events"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		fmt.Fprintln(stderr, "jwtgate audit: the answer is not the expected JSON:", err)
		return exitError
	}
	for _, e := range page.Events {
		actor := e.Actor.Type
		if e.Actor.ID != "" {
			actor += ":" + e.Actor.ID
		}
		target := e.KID
		if e.TokenID != "" {
			target = e.TokenID
		}
		line := fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", e.ID, e.Time, actor, e.Action, e.Project, target)
		if e.Forced {
			line += "\tforced"
		}
		fmt.Fprintln(stdout, line)
	}
	if page.NextCursor != nil {
		fmt.Fprintf(stderr, "more events: add --cursor %s\n", *page.NextCursor)
	}
	return exitOK
}
