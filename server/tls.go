package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// TLSFiles names the PEM files of a listener's TLS certificate. With
// ClientCAFile set, clients must present a certificate signed by one of its
// CAs (mutual TLS).
type TLSFiles struct {
	CertFile string // certificate chain, leaf first
	KeyFile  string // its private key
	// ClientCAFile, when set, holds the CA certificates that client
	// certificates must chain to; a client without one is refused during
	// the handshake.
	ClientCAFile string
}

func (f *TLSFiles) enabled() bool { return f != nil && (f.CertFile != "" || f.KeyFile != "") }

// DefaultTLSReloadInterval is how often certificate files are checked for
// changes.
const DefaultTLSReloadInterval = 5 * time.Second

// certReloader serves a listener's certificate (and client CAs) from files,
// reloading them when they change (checked every interval) or on Reload.
// A reload that fails (missing file, key not matching, bad PEM) keeps the
// previous certificate and is logged; new connections see the new
// certificate as soon as it loads, established ones keep theirs.
type certReloader struct {
	name  string // listener name, for logs
	files TLSFiles
	log   *slog.Logger

	mu    sync.Mutex // serializes loads
	stamp []byte     // file identities at the last successful load
	cur   atomic.Pointer[tls.Config]
}

func newCertReloader(name string, files TLSFiles, log *slog.Logger) (*certReloader, error) {
	if files.CertFile == "" || files.KeyFile == "" {
		return nil, errors.New("server: " + name + " TLS needs both a certificate file and a key file")
	}
	r := &certReloader{name: name, files: files, log: log}
	if _, err := r.load(true); err != nil {
		return nil, err
	}
	return r, nil
}

// fileStamp identifies the current contents of the files: a hash of their
// bytes (they are a few KiB). Content, not modification time, so that a
// swap of symlinks (Kubernetes secret volumes) or a copy that keeps the
// time is still noticed.
func (r *certReloader) fileStamp() []byte {
	h := sha256.New()
	for _, p := range []string{r.files.CertFile, r.files.KeyFile, r.files.ClientCAFile} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			h.Write([]byte("\x00missing\x00" + p))
			continue
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// load reads the files when they changed since the last load (or always
// when force is set) and reports whether a new certificate is in force.
func (r *certReloader) load(force bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp := r.fileStamp()
	if !force && bytes.Equal(stamp, r.stamp) {
		return false, nil
	}
	cert, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
	if err != nil {
		return false, errors.New("server: " + r.name + " TLS certificate (" + r.files.CertFile + ", " + r.files.KeyFile + "): " + err.Error())
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if r.files.ClientCAFile != "" {
		pem, err := os.ReadFile(r.files.ClientCAFile)
		if err != nil {
			return false, errors.New("server: " + r.name + " client CA file: " + err.Error())
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return false, errors.New("server: " + r.name + " client CA file " + r.files.ClientCAFile + " holds no PEM certificate")
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	r.cur.Store(cfg)
	r.stamp = stamp
	return true, nil
}

// config is the tls.Config a listener is wrapped with: each handshake takes
// the certificate and client CAs in force at that moment.
func (r *certReloader) config(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := r.cur.Load().Clone()
			c.NextProtos = nextProtos
			return c, nil
		},
	}
}

// check reloads when the files changed, logging the outcome.
func (r *certReloader) check(force bool) error {
	changed, err := r.load(force)
	switch {
	case err != nil:
		r.log.Error("TLS certificate reload failed; keeping the previous certificate", "listener", r.name, "err", err.Error())
	case changed:
		r.log.Info("TLS certificate loaded", "listener", r.name, "cert_file", r.files.CertFile)
	}
	return err
}

// setupTLS loads the configured certificates (New fails on a bad one).
func (s *Server) setupTLS() error {
	if s.cfg.TLS.enabled() {
		if s.cfg.TLS.ClientCAFile != "" {
			return errors.New("server: client certificates are supported on the admin listener only")
		}
		r, err := newCertReloader("verify", *s.cfg.TLS, s.log)
		if err != nil {
			return err
		}
		s.tlsVerify = r
	}
	if s.cfg.AdminTLS.enabled() {
		r, err := newCertReloader("admin", *s.cfg.AdminTLS, s.log)
		if err != nil {
			return err
		}
		s.tlsAdmin = r
	} else if s.cfg.AdminTLS != nil && s.cfg.AdminTLS.ClientCAFile != "" {
		return errors.New("server: requiring admin client certificates needs the admin listener's TLS certificate and key too")
	}
	return nil
}

func (s *Server) reloaders() []*certReloader {
	var rs []*certReloader
	for _, r := range []*certReloader{s.tlsVerify, s.tlsAdmin} {
		if r != nil {
			rs = append(rs, r)
		}
	}
	return rs
}

// ReloadTLS rereads every listener's certificate files now (jwtgate serve
// calls it on SIGHUP). New connections get the new certificates; on error
// the previous ones stay in force.
func (s *Server) ReloadTLS() error {
	var errs []error
	for _, r := range s.reloaders() {
		errs = append(errs, r.check(true))
	}
	return errors.Join(errs...)
}

// tlsWatch checks the certificate files for changes until stop closes.
func (s *Server) tlsWatch(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	iv := s.cfg.TLSReloadInterval
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			for _, r := range s.reloaders() {
				_ = r.check(false)
			}
		}
	}
}
