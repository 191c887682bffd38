package main

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/spf13/pflag"
)

func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("jwtgate keygen", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	bits := fs.Int("bits", 2048, "RSA modulus size in bits (2048, 3072 or 4096)")
	out := fs.String("out", "jwtgate-key", "file name `PREFIX`: writes <out>.pem (private key, mode 0600) and <out>.pub.pem (public key)")
	force := fs.Bool("force", false, "overwrite existing files")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: jwtgate keygen [flags]\n\nWrites a new RSA key pair as PEM files: the private key (PKCS#8, mode 0600)\nstays with whoever signs tokens; register the public key with `jwtgate keys add`.\n\nExample:\n  jwtgate keygen --out acme   # writes acme.pem and acme.pub.pem\n\nFlags:\n%s", cli.FlagUsages(fs))
	}
	if ok, code := cli.Parse(fs, "jwtgate keygen", args, stderr, false); !ok {
		return code
	}
	switch *bits {
	case 2048, 3072, 4096:
	default:
		fmt.Fprintf(stderr, "jwtgate keygen: --bits %d: want 2048, 3072 or 4096\n", *bits)
		return exitUsage
	}
	priv, err := rsa.GenerateKey(rand.Reader, *bits)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate keygen:", err)
		return exitError
	}
	privPath, pubPath := *out+".pem", *out+".pub.pem"
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	if err := writeFile(privPath, enginetest.PrivatePEM(priv), 0o600, flags); err != nil {
		fmt.Fprintln(stderr, "jwtgate keygen:", err)
		return exitError
	}
	if err := writeFile(pubPath, enginetest.PublicPEM(&priv.PublicKey), 0o644, flags); err != nil {
		fmt.Fprintln(stderr, "jwtgate keygen:", err)
		return exitError
	}
	fmt.Fprintf(stdout, "private key: %s (keep it secret)\npublic key:  %s (register it: jwtgate keys add --project <id> --public-key %s)\n", privPath, pubPath, pubPath)
	return exitOK
}

func writeFile(path string, data []byte, perm os.FileMode, flags int) error {
	f, err := os.OpenFile(path, flags, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists (use --force to overwrite)", path)
		}
		return err
	}
	if err := f.Chmod(perm); err != nil { // also when overwriting
		f.Close()
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}
