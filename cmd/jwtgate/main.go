// Command jwtgate serves RS256 JWT verification (jwtgate serve) and helps
// customers and operators around it: keygen writes an RSA key pair, mint
// signs a token (the customer's side), and keys manages registered keys over
// the admin API.
//
// Usage:
//
//	jwtgate serve [flags]             run the verify and admin listeners
//	jwtgate keygen [flags]            write an RSA key pair as PEM files
//	jwtgate mint [flags]              sign a token with a private key
//	jwtgate keys add|list|get|update|delete|rotate [flags]
//	jwtgate tokens create|list|revoke [flags]
//	jwtgate audit [flags]
//	jwtgate version
//
// Every serve flag can also be set with a JWTGATE_* environment variable
// (--admin-addr is JWTGATE_ADMIN_ADDR); a flag on the command line wins.
package main

import (
	"fmt"
	"io"
	"os"
)

var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `jwtgate verifies RS256 JWTs against per-project RSA public keys.

Usage:
  jwtgate serve [flags]       run the verify listener and the admin listener
  jwtgate keygen [flags]      write an RSA key pair (private key mode 0600)
  jwtgate mint [flags]        sign a token with a private key (the customer's side)
  jwtgate keys <add|list|get|update|delete|rotate> [flags]
                              manage keys over the admin API
  jwtgate tokens <create|list|revoke> [flags]
                              manage project-scoped admin tokens
  jwtgate audit [flags]       print the audit trail of admin changes
  jwtgate version             print the version

Run "jwtgate <command> --help" for the flags of a command.
`

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// run is main without the process: it parses args, writes to stdout and
// stderr, and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "keygen":
		return runKeygen(args[1:], stdout, stderr)
	case "mint":
		return runMint(args[1:], stdout, stderr)
	case "keys":
		return runKeys(args[1:], stdout, stderr)
	case "tokens":
		return runTokens(args[1:], stdout, stderr)
	case "audit":
		return runAudit(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "jwtgate", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "jwtgate: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
