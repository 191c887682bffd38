package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/cli"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/store/pgstore"
	"github.com/spf13/pflag"
)

type serveFlags struct {
	addr, adminAddr, dataDir, adminTokenFile, store string
	grpcAddr                                        string
	tlsCert, tlsKey, adminTLSCert, adminTLSKey      string
	adminClientCA                                   string
	tlsReload                                       time.Duration
	leeway, maxTTL                                  time.Duration
	requireClaims, claimHeaders                     []string
	keyCacheSize, tokenCacheSize, maxTokenBytes     int
	tokenCacheBytes, keyCacheBytes                  byteSize
	minKeyBits, maxKeyBits                          int
	usageFlush, readTimeout, writeTimeout           time.Duration
	maxStale                                        time.Duration
	idleTimeout, shutdownTimeout, shutdownDelay     time.Duration
	concurrency, maxHeaderBytes                     int
	logLevel, logFormat                             string
	jwksAllowPrivate                                bool
	jwksCAFile                                      string
	jwksInterval                                    time.Duration
}

func serveFlagSet(f *serveFlags, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("jwtgate serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringVar(&f.addr, "addr", server.DefaultAddr, "address of the verify listener (/v1/verify, JWKS, /healthz, /readyz)")
	fs.StringVar(&f.adminAddr, "admin-addr", server.DefaultAdminAddr, "address of the admin listener (key API, /metrics); keep it on loopback or a private network")
	fs.StringVar(&f.grpcAddr, "grpc-addr", "", "address of the optional gRPC listener: Envoy ext_authz (envoy.service.auth.v3.Authorization/Check) and gRPC health; empty: off")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate chain: serve the verify listener (and --grpc-addr) over TLS 1.2+; needs --tls-key")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&f.adminTLSCert, "admin-tls-cert", "", "PEM certificate chain: serve the admin listener over TLS 1.2+; needs --admin-tls-key")
	fs.StringVar(&f.adminTLSKey, "admin-tls-key", "", "PEM private key of --admin-tls-cert")
	fs.StringVar(&f.adminClientCA, "admin-client-ca", "", "PEM CA certificates: the admin listener requires a client certificate signed by one of them (needs --admin-tls-cert)")
	fs.DurationVar(&f.tlsReload, "tls-reload-interval", server.DefaultTLSReloadInterval, "how often certificate files are checked for changes (SIGHUP reloads at once)")
	fs.StringVar(&f.dataDir, "data-dir", "./jwtgate-data", "directory of the embedded key store (keys.db) and of a generated admin token (admin-token)")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the admin bearer token, readable by its owner only (chmod 600: else jwtgate refuses to start); else $JWTGATE_ADMIN_TOKEN; else one is generated into <data-dir>/admin-token (mode 0600)")
	fs.StringVar(&f.store, "store", "", "key store URL (e.g. postgres://...); empty: the embedded bbolt store in --data-dir")
	fs.DurationVar(&f.maxStale, "max-stale", pgstore.DefaultMaxStale, "with a shared store (postgres): past this long without confirming it has seen every key change (the database unreachable), a node answers 503 to verifies and /readyz instead of trusting its caches; 0 removes the bound")
	fs.DurationVar(&f.leeway, "leeway", engine.DefaultLeeway, "clock skew tolerated on exp, nbf and iat (whole seconds)")
	fs.DurationVar(&f.maxTTL, "max-ttl", engine.DefaultMaxTTL, "longest token lifetime (exp - iat) accepted; longer tokens get ttl_exceeded")
	fs.StringSliceVar(&f.requireClaims, "require-claims", nil, "claims every token must carry as non-empty strings, comma-separated (e.g. groupRef,consumerRef); else missing_claim")
	fs.StringSliceVar(&f.claimHeaders, "claim-header", nil, "claim=Header: copy a claim of a verified token into a response header (repeatable, e.g. groupRef=X-Group-Ref)")
	f.keyCacheBytes = engine.DefaultKeyCacheBytes
	fs.Var(&f.keyCacheBytes, "key-cache-bytes", "memory the prepared keys in the key cache may use, in bytes or with a KiB, MiB or GiB suffix (the default holds about 100,000 2048-bit keys); past it the coldest keys are evicted and their next use reads the store")
	fs.IntVar(&f.keyCacheSize, "key-cache-size", engine.DefaultKeyCacheSize, "most prepared keys kept in the key cache, on top of --key-cache-bytes (0: no count bound)")
	fs.IntVar(&f.tokenCacheSize, "token-cache-size", engine.DefaultTokenCacheSize, "verified tokens remembered (0 turns the token cache off); a cached token is still checked for exp and key revocation")
	f.tokenCacheBytes = engine.DefaultTokenCacheBytes
	fs.Var(&f.tokenCacheBytes, "token-cache-bytes", "memory the token cache's entries may hold, in bytes or with a KiB, MiB or GiB suffix (0 turns the cache off); both this and --token-cache-size bound the cache")
	fs.IntVar(&f.maxTokenBytes, "max-token-bytes", engine.DefaultMaxTokenBytes, "largest Authorization value accepted; larger gets token_too_large")
	fs.IntVar(&f.maxHeaderBytes, "max-header-bytes", 0, "largest request line + headers (each connection's read buffer); larger gets 431 (0: max-token-bytes + 8 KiB, at least 32 KiB)")
	fs.IntVar(&f.minKeyBits, "min-key-bits", engine.DefaultMinKeyBits, "smallest RSA modulus a registered key may have")
	fs.IntVar(&f.maxKeyBits, "max-key-bits", engine.DefaultMaxKeyBits, "largest RSA modulus a registered key may have")
	fs.DurationVar(&f.usageFlush, "usage-flush-interval", server.DefaultUsageFlushInterval, "how often keys' last_used_at and verified_count are written to the store")
	fs.DurationVar(&f.readTimeout, "read-timeout", server.DefaultReadTimeout, "time allowed to read a whole request; slower clients are disconnected")
	fs.DurationVar(&f.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "time allowed to write a response")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "how long an idle keep-alive connection is kept")
	fs.IntVar(&f.concurrency, "concurrency", server.DefaultConcurrency, "most connections served at once per listener")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "on SIGINT/SIGTERM, keep serving this long with /readyz at 503 before closing the listeners")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "longest wait for in-flight requests on shutdown")
	fs.BoolVar(&f.jwksAllowPrivate, "jwks-allow-private", false, "let JWKS imports (PUT /v1/projects/{project}/jwks-source) reach loopback, private and link-local addresses; off: only public addresses (SSRF protection)")
	fs.StringVar(&f.jwksCAFile, "jwks-ca-file", "", "PEM CA certificates to trust for JWKS URLs instead of the system's")
	fs.DurationVar(&f.jwksInterval, "jwks-interval", server.DefaultJWKSInterval, "how often a node looks for JWKS sources due a fetch")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: jwtgate serve [flags]\n\nRuns the verify listener and the admin listener. Every flag can also be set\nwith JWTGATE_<FLAG> (e.g. JWTGATE_ADMIN_ADDR, JWTGATE_REQUIRE_CLAIMS=a,b);\nthe admin token itself can be given in JWTGATE_ADMIN_TOKEN.\nSIGINT/SIGTERM: /readyz turns 503, in-flight requests finish, exit 0.\n\nExample:\n  jwtgate serve --data-dir ./jwtgate-data --require-claims groupRef\n\nFlags:\n%s", cli.FlagUsages(fs))
	}
	return fs
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func parseClaimHeaders(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(list))
	for _, item := range list {
		claim, hdr, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || claim == "" || hdr == "" {
			return nil, fmt.Errorf("--claim-header %q: want claim=Header, e.g. groupRef=X-Group-Ref", item)
		}
		m[claim] = hdr
	}
	return m, nil
}

var defaultKeyCacheBytes = byteSize(engine.DefaultKeyCacheBytes)

func runServe(args []string, stdout, stderr io.Writer) int {
	var f serveFlags
	fs := serveFlagSet(&f, stderr)
	if ok, code := cli.Parse(fs, "jwtgate serve", args, stderr, false); !ok {
		return code
	}
	if err := applyEnv(fs); err != nil {
		fmt.Fprintln(stderr, "jwtgate serve:", err)
		return exitUsage
	}
	log, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate serve:", err)
		return exitUsage
	}
	headers, err := parseClaimHeaders(f.claimHeaders)
	if err != nil {
		fmt.Fprintln(stderr, "jwtgate serve:", err)
		return exitUsage
	}
	if f.keyCacheBytes < engine.MinKeyCacheBytes || f.keyCacheBytes > 1<<40 {
		fmt.Fprintf(stderr, "jwtgate serve: --key-cache-bytes %s: want between 64KiB and 1024GiB (the default %s holds about %d 2048-bit keys)\n",
			f.keyCacheBytes.String(), defaultKeyCacheBytes.String(), engine.KeyCacheKeysFor(engine.DefaultKeyCacheBytes))
		return exitUsage
	}
	opts := []engine.Option{
		engine.WithLeeway(f.leeway),
		engine.WithMaxTTL(f.maxTTL),
		engine.WithKeyCacheSize(f.keyCacheSize),
		engine.WithKeyCacheBytes(int(f.keyCacheBytes)),
		engine.WithTokenCacheSize(f.tokenCacheSize),
		engine.WithTokenCacheBytes(int64(f.tokenCacheBytes)),
		engine.WithMaxTokenBytes(f.maxTokenBytes),
		engine.WithKeyPolicy(engine.KeyPolicy{MinBits: f.minKeyBits, MaxBits: f.maxKeyBits}),
	}
	if len(f.requireClaims) > 0 {
		opts = append(opts, engine.WithRequiredClaims(f.requireClaims...))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var so storeOptions
	if fs.Changed("max-stale") {
		if f.maxStale < 0 {
			fmt.Fprintf(stderr, "jwtgate serve: --max-stale %s: must not be negative (0 removes the bound)\n", f.maxStale)
			return exitUsage
		}
		so.maxStale = &f.maxStale
	}
	store, closer, err := openStore(ctx, f.store, f.dataDir, so, log)
	if err != nil {
		log.Error("cannot open the key store", "err", err.Error())
		return exitError
	}
	defer func() {
		if err := closer.Close(); err != nil {
			log.Error("closing the key store", "err", err.Error())
		}
	}()

	adminToken := os.Getenv("JWTGATE_ADMIN_TOKEN")
	if f.adminTokenFile != "" && adminToken != "" {
		log.Warn("both --admin-token-file and JWTGATE_ADMIN_TOKEN are set; using the file")
		adminToken = ""
	}
	var verifyTLS, adminTLS *server.TLSFiles
	if f.tlsCert != "" || f.tlsKey != "" {
		if f.tlsCert == "" || f.tlsKey == "" {
			fmt.Fprintln(stderr, "jwtgate serve: --tls-cert and --tls-key go together: give both PEM files, or neither for plain HTTP")
			return exitUsage
		}
		verifyTLS = &server.TLSFiles{CertFile: f.tlsCert, KeyFile: f.tlsKey}
	}
	if f.adminTLSCert != "" || f.adminTLSKey != "" || f.adminClientCA != "" {
		if f.adminTLSCert == "" || f.adminTLSKey == "" {
			fmt.Fprintln(stderr, "jwtgate serve: --admin-tls-cert and --admin-tls-key go together (and --admin-client-ca needs them): give both PEM files")
			return exitUsage
		}
		adminTLS = &server.TLSFiles{CertFile: f.adminTLSCert, KeyFile: f.adminTLSKey, ClientCAFile: f.adminClientCA}
	}
	if f.tlsReload <= 0 {
		fmt.Fprintf(stderr, "jwtgate serve: --tls-reload-interval %s: must be positive (e.g. 5s)\n", f.tlsReload)
		return exitUsage
	}
	jwksCfg := server.JWKSImportConfig{AllowPrivate: f.jwksAllowPrivate, Interval: f.jwksInterval}
	if f.jwksInterval <= 0 {
		fmt.Fprintf(stderr, "jwtgate serve: --jwks-interval %s: must be positive (e.g. 5s)\n", f.jwksInterval)
		return exitUsage
	}
	if f.jwksCAFile != "" {
		pem, err := os.ReadFile(f.jwksCAFile)
		if err != nil {
			fmt.Fprintf(stderr, "jwtgate serve: --jwks-ca-file: %v\n", err)
			return exitUsage
		}
		jwksCfg.RootCAs = x509.NewCertPool()
		if !jwksCfg.RootCAs.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "jwtgate serve: --jwks-ca-file %s: no PEM certificate in it\n", f.jwksCAFile)
			return exitUsage
		}
	}
	srv, err := server.New(server.Config{
		JWKS: jwksCfg,
		TLS:  verifyTLS, AdminTLS: adminTLS, TLSReloadInterval: f.tlsReload,
		Addr: f.addr, AdminAddr: f.adminAddr, GRPCAddr: f.grpcAddr, Store: store, DataDir: f.dataDir,
		AdminToken: adminToken, AdminTokenFile: f.adminTokenFile,
		EngineOptions: opts, ClaimHeaders: headers, Logger: log,
		UsageFlushInterval: f.usageFlush, ReadTimeout: f.readTimeout, WriteTimeout: f.writeTimeout,
		IdleTimeout: f.idleTimeout, Concurrency: f.concurrency, ShutdownDelay: f.shutdownDelay,
		MaxHeaderBytes: f.maxHeaderBytes,
	})
	if err != nil {
		log.Error("cannot start", "err", err.Error())
		return exitError
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err.Error())
		return exitError
	}
	if p := srv.AdminTokenPath(); p != "" {
		log.Info("admin token is in a file (mode 0600); read it to call the admin API", "admin_token_file", p)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for waiting := true; waiting; {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading TLS certificates")
			_ = srv.ReloadTLS() // failures are logged; the previous certificates stay
		case <-ctx.Done():
			waiting = false
		}
	}
	stop() // a second signal kills the process the default way
	log.Info("signal received; shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown incomplete", "err", err.Error())
		return exitError
	}
	return exitOK
}
