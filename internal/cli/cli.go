// Package cli holds what the jwtgate and loadgen commands share about
// their command lines: one way to report a flag error (named, with a
// pointer to --help, exit status 2) and one layout of the flag list
// (no pflag type names such as stringToString or [=true|false]).
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Exit statuses, the same in both commands: 2 for a usage error (unknown
// flag, bad value, missing required flag), 1 for a failure at run time.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Parse parses args into fs. prog is the command as typed, e.g. "jwtgate
// serve". It reports whether to go on; when not, code is the exit status:
// 0 after --help (fs.Usage has printed the help), 2 after a flag error,
// which is written to stderr as "prog: <error>" followed by a pointer to
// "prog --help". Positional arguments are refused unless allowArgs.
func Parse(fs *pflag.FlagSet, prog string, args []string, stderr io.Writer, allowArgs bool) (ok bool, code int) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return false, ExitOK
		}
		UsageError(stderr, prog, describe(err))
		return false, ExitUsage
	}
	if !allowArgs && fs.NArg() > 0 {
		UsageError(stderr, prog, fmt.Sprintf("unexpected argument %q (every option is a --flag)", fs.Arg(0)))
		return false, ExitUsage
	}
	return true, ExitOK
}

// UsageError writes "prog: msg" and the pointer to --help, and returns
// ExitUsage.
func UsageError(stderr io.Writer, prog, msg string) int {
	fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", prog, msg, prog)
	return ExitUsage
}

// describe turns pflag's error into a sentence that names the flag and
// says what is wrong, without Go's parser internals.
func describe(err error) string {
	msg := err.Error()
	// pflag: invalid argument "10" for "--max-ttl" flag: time: missing unit in duration "10"
	if rest, ok := strings.CutPrefix(msg, "invalid argument "); ok {
		if i := strings.Index(rest, " flag: "); i > 0 {
			head, why := rest[:i], rest[i+len(" flag: "):]
			val, name, _ := strings.Cut(head, " for ")
			name = strings.Trim(name, `"`)
			if j := strings.LastIndex(name, "--"); j >= 0 {
				name = name[j:]
			}
			return fmt.Sprintf("%s %s: %s", name, val, explain(why))
		}
	}
	return strings.TrimPrefix(msg, "flag ")
}

func explain(why string) string {
	switch {
	case strings.Contains(why, "missing unit in duration"):
		return "a duration needs a unit, e.g. 10m, 30s or 1h"
	case strings.HasPrefix(why, "time: invalid duration"):
		return "not a duration; write e.g. 10m, 30s or 1h"
	case strings.Contains(why, "strconv.ParseInt") || strings.Contains(why, "strconv.Atoi"):
		if strings.Contains(why, "out of range") {
			return "number out of range"
		}
		return "not a whole number"
	case strings.Contains(why, "strconv.ParseFloat"):
		return "not a number"
	case strings.Contains(why, "strconv.ParseBool"):
		return "not true or false"
	}
	return why
}

// FlagUsages formats the flags of fs like pflag does, but names each
// flag's value by the backquoted word of its usage (`FILE`), else by a
// plain word for its type (no stringToString, stringArray or
// [=true|false]), and leaves out zero defaults.
func FlagUsages(fs *pflag.FlagSet) string {
	type row struct{ left, usage string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		name, usage := pflag.UnquoteUsage(f)
		if f.Value.Type() == "bool" {
			name = ""
		} else {
			name = placeholder(name)
		}
		if name != "" {
			left += " " + name
		}
		if d := f.DefValue; !zeroDefault(f.Value.Type(), d) {
			if f.Value.Type() == "string" {
				d = fmt.Sprintf("%q", d)
			}
			usage += " (default " + d + ")"
		}
		width = max(width, len(left))
		rows = append(rows, row{left, usage})
	})
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s   %s\n", width, r.left, r.usage)
	}
	return b.String()
}

func placeholder(typeName string) string {
	switch typeName {
	case "stringArray", "stringSlice", "strings":
		return "value"
	case "stringToString":
		return "name=value"
	case "float64", "float32":
		return "float"
	case "int64", "int32", "uint", "uint64":
		return "int"
	}
	return typeName
}

func zeroDefault(typ, d string) bool {
	switch d {
	case "", "0", "false", "[]", "0s", "map[]":
		return true
	}
	return typ == "bool" && d == "false"
}
