package main

import (
	"errors"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// envName is the environment variable of a flag: JWTGATE_ + the flag's
// name upper-cased with dashes as underscores (--admin-addr: JWTGATE_ADMIN_ADDR).
func envName(flag string) string {
	return "JWTGATE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable, if set. A list flag takes a comma-separated value.
func applyEnv(fs *pflag.FlagSet, skip ...string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		for _, s := range skip {
			if f.Name == s {
				return
			}
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, errors.New(envName(f.Name)+": "+err.Error()))
		}
	})
	return errors.Join(errs...)
}
