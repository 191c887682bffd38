// Package tlsclient builds the TLS client configuration of jwtgate's own
// clients (`jwtgate keys`, the load generator) from PEM files: the CAs to
// trust for https:// URLs and, for an admin listener that requires one, a
// client certificate.
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// Files names the PEM files; every field is optional.
type Files struct {
	CAFile   string // CA certificates to trust instead of the system roots
	CertFile string // client certificate (with KeyFile)
	KeyFile  string
}

// Config returns a TLS 1.2+ client configuration, or nil when f names no
// file (the system roots, no client certificate). Errors name the file and
// what is wrong with it.
func Config(f Files) (*tls.Config, error) {
	if f == (Files{}) {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		b, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate (want -----BEGIN CERTIFICATE----- blocks)", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s / key %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("a client certificate needs both its certificate file and its key file")
	}
	return cfg, nil
}

// HTTPClient returns an http.Client with timeout that uses cfg (nil: Go's
// defaults).
func HTTPClient(cfg *tls.Config, timeout time.Duration) *http.Client {
	if cfg == nil {
		return &http.Client{Timeout: timeout}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Timeout: timeout, Transport: tr}
}
