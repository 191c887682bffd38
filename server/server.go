package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/fsutil"
	"github.com/jwtgate/jwtgate/internal/verdict"
	"github.com/valyala/fasthttp"
)

// Defaults of Config.
const (
	DefaultAddr               = ":8080"
	DefaultAdminAddr          = "127.0.0.1:8081"
	DefaultUsageFlushInterval = time.Second
	DefaultReadTimeout        = 5 * time.Second
	DefaultWriteTimeout       = 5 * time.Second
	DefaultIdleTimeout        = 60 * time.Second
	DefaultConcurrency        = 64 * 1024
	DefaultMaxConnsPerIP      = 0 // unlimited: forward-auth proxies share few IPs
	// MaxAdminBodyBytes bounds an admin request body (413 beyond it).
	MaxAdminBodyBytes = 64 << 10
	// MaxVerifyBodyBytes bounds a request body on the verify listener (413
	// beyond it). The body is never read by the handler: it is only
	// consumed to keep the connection's framing.
	MaxVerifyBodyBytes = 4 << 10
	// DefaultMaxHeaderBytes is the least default header limit (the request
	// line and headers; 431 beyond it). Forward-auth proxies copy the
	// client's headers (cookies included) into their request.
	DefaultMaxHeaderBytes = 32 << 10
	// AdminTokenFileName is the file a generated admin token is written to,
	// inside Config.DataDir.
	AdminTokenFileName = "admin-token"
)

// Config configures a Server. Store is required; every other field has a
// default.
type Config struct {
	// Addr is the verify listener's address (default ":8080"; tests use
	// "127.0.0.1:0").
	Addr string
	// AdminAddr is the admin listener's address (default "127.0.0.1:8081":
	// loopback, so the admin API is not exposed by accident).
	AdminAddr string
	// GRPCAddr, when set, is the address of the gRPC listener: Envoy's
	// ext_authz service (envoy.service.auth.v3.Authorization) and the gRPC
	// health service. Off by default.
	GRPCAddr string
	// TLS, when set, serves the verify listener (and the gRPC listener)
	// over TLS 1.2+ with this certificate; AdminTLS does the same for the
	// admin listener and may require client certificates. The files are
	// reloaded when they change (checked every TLSReloadInterval, default
	// 5s) and on ReloadTLS.
	TLS               *TLSFiles
	AdminTLS          *TLSFiles
	TLSReloadInterval time.Duration
	// Store is the key store (the caller opens and closes it).
	Store engine.KeyStore
	// DataDir is where a generated admin token is written (file
	// "admin-token", mode 0600).
	DataDir string
	// AdminToken is an explicit admin bearer token; else AdminTokenFile is
	// read; else a token is read from, or generated into, DataDir.
	AdminToken     string
	AdminTokenFile string
	// EngineOptions configure the Verifier (leeway, max TTL, required
	// claims, cache sizes, max token bytes, key policy).
	EngineOptions []engine.Option
	// ClaimHeaders maps a claim name to a response header set on a 200 from
	// /v1/verify, e.g. "groupRef" -> "X-Group-Ref".
	ClaimHeaders map[string]string
	// Logger receives structured logs; never a token or key material.
	// Default: slog.Default().
	Logger *slog.Logger
	// UsageFlushInterval is how often usage (last_used_at, verified_count)
	// is written to the store. Default 1s.
	UsageFlushInterval time.Duration

	// Limits. Zero means the default.
	ReadTimeout   time.Duration // whole request, headers and body (slow clients are cut off)
	WriteTimeout  time.Duration
	IdleTimeout   time.Duration // keep-alive idle time
	Concurrency   int           // simultaneous connections per listener
	MaxConnsPerIP int           // 0 = unlimited
	// MaxHeaderBytes bounds the request line and headers (431 beyond it);
	// it is also each connection's read buffer. Up to it, an Authorization
	// header over the token limit is 401 token_too_large. Default: the
	// engine's max token size + 8 KiB, at least DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// JWKS configures the import of keys from JWKS URLs (with a store
	// that keeps JWKS sources).
	JWKS JWKSImportConfig
	// ShutdownDelay keeps serving (with /readyz at 503) this long before
	// the listeners close, so that load balancers notice. Default 0.
	ShutdownDelay time.Duration
}

// Invalidator drops cached state about keys; *engine.Verifier satisfies
// it. It is engine.Invalidator, so stores need not import the server.
type Invalidator = engine.Invalidator

// InvalidationSource is implemented by stores that learn of changes made
// elsewhere (another node); it is engine.ChangeFeed, and engine.New calls
// SetInvalidator with the Verifier before loading its registry index.
type InvalidationSource interface {
	SetInvalidator(Invalidator)
}

// HealthReporter is implemented by stores that can report their health.
// While unhealthy the node still verifies from its caches: /readyz says
// "degraded" (200), and the detail, which may name the database, goes to
// the log and to the admin listener's GET /v1/status; the metric
// jwtgate_store_healthy shows it too.
type HealthReporter interface {
	Health() (ok bool, detail string)
}

// MetricsWriter is implemented by stores with their own metrics: Prometheus
// text appended to /metrics.
type MetricsWriter interface {
	WriteMetrics(w io.Writer)
}

// Server is a running (or ready to run) jwtgate server. Its methods are safe
// for concurrent use.
type Server struct {
	bodies       *verdict.Bodies // 401 bodies naming this server's limits
	cfg          Config
	log          *slog.Logger
	v            *engine.Verifier
	store        engine.KeyStore
	claimHeaders []claimHeader
	adminHash    [sha256.Size]byte
	tokens       admin.TokenStore // nil when the store keeps no admin tokens
	auditStore   admin.AuditStore // nil when the store keeps no audit trail
	jwksImp      *importer        // nil when the store keeps no JWKS sources
	authLog      logLimiter       // failed admin authentications
	storeFailLog logLimiter       // store errors met by unauthenticated requests
	adminToken   string
	adminPath    string

	verifySrv   *fasthttp.Server
	adminSrv    *fasthttp.Server
	ln, adminLn net.Listener
	grpc        *grpcListener

	tlsVerify, tlsAdmin *certReloader
	tlsStop, tlsDone    chan struct{}

	ready      atomic.Bool
	lastHealth atomic.Pointer[string] // the store health detail last logged ("" healthy)
	draining   atomic.Bool
	started    atomic.Bool
	stopped    atomic.Bool

	metrics *verifyMetrics
	admin   adminMetrics

	genSlots chan struct{} // bounds concurrent key-pair generations

	flushMu   sync.Mutex
	flushStop chan struct{}
	flushDone chan struct{}
	serveWG   sync.WaitGroup
	shutOnce  sync.Once
	shutErr   error
}

type claimHeader struct {
	claim  string
	header []byte
}

// New validates cfg, builds the Verifier over cfg.Store and sets up the admin
// token. It does not bind anything: call Start.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = DefaultAdminAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UsageFlushInterval <= 0 {
		cfg.UsageFlushInterval = DefaultUsageFlushInterval
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.TLSReloadInterval <= 0 {
		cfg.TLSReloadInterval = DefaultTLSReloadInterval
	}
	v, err := engine.New(cfg.Store, cfg.EngineOptions...)
	if err != nil {
		return nil, err
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = max(DefaultMaxHeaderBytes, v.MaxTokenBytes()+8<<10)
	}
	if cfg.MaxHeaderBytes < v.MaxTokenBytes()+1<<10 {
		return nil, fmt.Errorf("server: the header limit (MaxHeaderBytes, --max-header-bytes) is %d; it must be at least the max token size (--max-token-bytes, %d) + 1024", cfg.MaxHeaderBytes, v.MaxTokenBytes())
	}
	s := &Server{cfg: cfg, log: cfg.Logger, v: v, store: cfg.Store, metrics: newVerifyMetrics(), genSlots: generateSlots()}
	for name, hdr := range cfg.ClaimHeaders {
		if name == "" || !verdict.ValidHeaderName(hdr) {
			return nil, errors.New("server: claim header " + name + "=" + hdr + ": need a claim name and a valid HTTP header name")
		}
		s.claimHeaders = append(s.claimHeaders, claimHeader{claim: name, header: []byte(hdr)})
	}
	if err := s.setupTLS(); err != nil {
		return nil, err
	}
	if err := s.setupAdminToken(); err != nil {
		return nil, err
	}
	// engine.New gave the Verifier to an InvalidationSource store already
	// (engine.ChangeFeed), before loading the registry index.
	s.tokens, _ = cfg.Store.(admin.TokenStore)
	s.auditStore, _ = cfg.Store.(admin.AuditStore)
	if js, ok := cfg.Store.(admin.JWKSSourceStore); ok {
		s.jwksImp = newImporter(s, js, cfg.JWKS)
	}
	if s.auditStore == nil {
		s.log.Warn("the key store keeps no audit trail and no scoped admin tokens; admin changes are only logged")
	}
	s.bodies = verdict.NewBodies(v)
	s.verifySrv = s.newFastServer("jwtgate", s.VerifyHandler(), MaxVerifyBodyBytes)
	s.adminSrv = s.newFastServer("jwtgate", s.AdminHandler(), MaxAdminBodyBytes)
	return s, nil
}

func (s *Server) newFastServer(name string, h fasthttp.RequestHandler, maxBody int) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       h,
		ErrorHandler:                  s.errorHandler(maxBody),
		Name:                          name,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		ReadBufferSize:                s.cfg.MaxHeaderBytes,
		WriteBufferSize:               4096,
		MaxRequestBodySize:            maxBody,
		ReadTimeout:                   s.cfg.ReadTimeout,
		WriteTimeout:                  s.cfg.WriteTimeout,
		IdleTimeout:                   s.cfg.IdleTimeout,
		Concurrency:                   s.cfg.Concurrency,
		MaxConnsPerIP:                 s.cfg.MaxConnsPerIP,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
		TCPKeepalive:                  true,
		Logger:                        fastLogger{s.log},
	}
}

// fastLogger routes fasthttp's own messages to slog (they name connections
// and errors, never request contents).
type fastLogger struct{ l *slog.Logger }

func (f fastLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp", "msg", strings.TrimSpace(fmt.Sprintf(format, args...)))
}

var (
	errJSONTimeout    = []byte(`{"error":"timeout","message":"the request was not received in time"}`)
	errJSONBadRequest = []byte(`{"error":"bad_request","message":"the request could not be parsed as HTTP/1.1"}`)
)

// errorHandler returns the handler of requests that fasthttp could not
// read, on a listener whose body limit is maxBody; its 413 and 431 bodies
// give the limits.
func (s *Server) errorHandler(maxBody int) func(*fasthttp.RequestCtx, error) {
	bodyTooLarge := []byte(`{"error":"body_too_large","message":"the request body is larger than this listener's limit of ` + sizeText(maxBody) + `"}`)
	headerTooLarge := []byte(`{"error":"header_too_large","message":"the request line and headers are larger than this server's limit of ` + sizeText(s.cfg.MaxHeaderBytes) + `"}`)
	return func(ctx *fasthttp.RequestCtx, err error) { s.answerUnreadable(ctx, err, bodyTooLarge, headerTooLarge) }
}

// sizeText writes n bytes as KiB when whole, else as bytes.
func sizeText(n int) string {
	if n%1024 == 0 {
		return strconv.Itoa(n/1024) + " KiB"
	}
	return strconv.Itoa(n) + " bytes"
}

// answerUnreadable answers a request that fasthttp could not read.
func (s *Server) answerUnreadable(ctx *fasthttp.RequestCtx, err error, errJSONBodyTooLarge, errJSONHeaderLarge []byte) {
	// fasthttp closes the connection after this answer, maybe with input
	// still unread: let the client read the answer rather than a reset.
	markLinger(ctx.Conn())
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.SetStatusCode(fasthttp.StatusRequestEntityTooLarge)
		ctx.SetBody(errJSONBodyTooLarge)
	case errors.As(err, &small):
		ctx.SetStatusCode(fasthttp.StatusRequestHeaderFieldsTooLarge)
		ctx.SetBody(errJSONHeaderLarge)
	case errors.As(err, &ne) && ne.Timeout():
		ctx.SetStatusCode(fasthttp.StatusRequestTimeout)
		ctx.SetBody(errJSONTimeout)
	default:
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBody(errJSONBadRequest)
	}
}

// setupAdminToken picks the admin token: explicit, from a file, or read
// from / generated into DataDir.
func (s *Server) setupAdminToken() error {
	tok := s.cfg.AdminToken
	switch {
	case tok != "":
	case s.cfg.AdminTokenFile != "":
		b, err := os.ReadFile(s.cfg.AdminTokenFile)
		if err != nil {
			return errors.New("server: reading the admin token file: " + err.Error())
		}
		if err := checkPrivateFile(s.cfg.AdminTokenFile); err != nil {
			return err
		}
		tok = strings.TrimSpace(string(b))
		if tok == "" {
			return errors.New("server: the admin token file " + s.cfg.AdminTokenFile + " is empty")
		}
	default:
		if s.cfg.DataDir == "" {
			return errors.New("server: no admin token: set AdminToken, AdminTokenFile or DataDir")
		}
		path := filepath.Join(s.cfg.DataDir, AdminTokenFileName)
		t, err := readOrCreateToken(path)
		if err != nil {
			return err
		}
		tok, s.adminPath = t, path
	}
	if len(tok) < 16 {
		return errors.New("server: the admin token must be at least 16 characters")
	}
	s.adminToken = tok
	s.adminHash = sha256.Sum256([]byte(tok))
	return nil
}

// checkPrivateFile refuses an admin token file that group or others may
// read or write: whoever can read it administers every key.
func checkPrivateFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return errors.New("server: the admin token file: " + err.Error())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("server: the admin token file %s is open to group or others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	return nil
}

// syncDir makes a new directory entry durable (a variable for tests).
var syncDir = fsutil.SyncDir

func readOrCreateToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if err := checkPrivateFile(path); err != nil {
			return "", err
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", errors.New("server: the admin token file " + path + " is empty; delete it to generate a new one")
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", errors.New("server: reading the admin token: " + err.Error())
	}
	dir := filepath.Dir(path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", errors.New("server: creating the data directory: " + err.Error())
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return "", errors.New("server: syncing the data directory's parent: " + err.Error())
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // created concurrently: use it
			return readOrCreateToken(path)
		}
		return "", errors.New("server: writing the admin token: " + err.Error())
	}
	_, werr := f.WriteString(tok + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return "", errors.New("server: writing the admin token: " + err.Error())
	}
	// The file is durable; its name is once the directory is synced.
	if err := syncDir(dir); err != nil {
		return "", errors.New("server: syncing the data directory: " + err.Error())
	}
	return tok, nil
}

// Start binds both listeners and serves them in the background, and starts
// the usage flusher. /readyz answers 200 from here on.
func (s *Server) Start() error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("server: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return errors.New("server: verify listener: " + err.Error())
	}
	aln, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		ln.Close()
		return errors.New("server: admin listener: " + err.Error())
	}
	ln, aln = lingerListener{ln}, lingerListener{aln}
	s.ln, s.adminLn = ln, aln
	if err := s.startGRPC(); err != nil {
		ln.Close()
		aln.Close()
		return err
	}
	s.flushStop, s.flushDone = make(chan struct{}), make(chan struct{})
	go s.flushLoop()
	if s.jwksImp != nil {
		s.jwksImp.start()
	}
	vln, admLn := net.Listener(ln), net.Listener(aln)
	if s.tlsVerify != nil {
		vln = tls.NewListener(ln, s.tlsVerify.config("http/1.1"))
	}
	if s.tlsAdmin != nil {
		admLn = tls.NewListener(aln, s.tlsAdmin.config("http/1.1"))
	}
	if len(s.reloaders()) > 0 {
		s.tlsStop, s.tlsDone = make(chan struct{}), make(chan struct{})
		go s.tlsWatch(s.tlsStop, s.tlsDone)
	}
	s.serveWG.Add(2)
	go s.serve(s.verifySrv, vln, "verify")
	go s.serve(s.adminSrv, admLn, "admin")
	s.ready.Store(true)
	s.startGRPCHealth()
	attrs := []any{"verify_addr", s.Addr(), "admin_addr", s.AdminAddr(),
		"verify_tls", s.tlsVerify != nil, "admin_tls", s.tlsAdmin != nil}
	if s.tlsAdmin != nil && s.cfg.AdminTLS.ClientCAFile != "" {
		attrs = append(attrs, "admin_client_certs", "required")
	}
	if s.grpc != nil {
		attrs = append(attrs, "grpc_addr", s.GRPCAddr(), "grpc_tls", s.tlsVerify != nil)
	}
	if s.adminPath != "" {
		attrs = append(attrs, "admin_token_file", s.adminPath)
	}
	s.log.Info("jwtgate listening", attrs...)
	st := s.v.Stats()
	s.log.Info("key cache bounded", "max_bytes", st.KeyMaxBytes, "holds_2048_bit_keys", engine.KeyCacheKeysFor(st.KeyMaxBytes),
		"keys_held", st.KeySize, "bytes_used", st.KeyBytes)
	go s.logRegistryLoaded()
	s.warnExposedAdmin()
	return nil
}

// warnExposedAdmin warns when the admin listener is bound to an address
// other than loopback without TLS: the admin token and every key change
// would cross the network in clear text.
func (s *Server) warnExposedAdmin() {
	host, _, err := net.SplitHostPort(s.AdminAddr())
	if err != nil {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || s.adminTLS() {
		return
	}
	s.log.Warn("the admin listener is on "+s.AdminAddr()+", not a loopback address, without TLS: the admin token and key changes cross the network in clear text. Bind it to 127.0.0.1 (--admin-addr) or serve it with TLS (--admin-tls-cert/--admin-tls-key)",
		"admin_addr", s.AdminAddr())
}

// adminTLS reports whether the admin listener serves TLS (Config.AdminTLS).
func (s *Server) adminTLS() bool { return s.tlsAdmin != nil }

// logRegistryLoaded says when the registry index is loaded and the key
// cache warmed: from then on unknown kids cost no store read, and the
// recently used keys none either.
func (s *Server) logRegistryLoaded() {
	select {
	case <-s.v.Ready():
	case <-s.flushStop:
		return
	}
	st, rep := s.v.Stats(), s.v.LastLoad()
	if !st.IndexReady {
		return // a store that cannot be indexed
	}
	s.log.Info("key registry loaded", "kids", rep.KIDs, "keys_warmed", rep.Warmed, "took", rep.Duration.Round(time.Millisecond).String(),
		"keys_held", st.KeySize, "bytes_used", st.KeyBytes, "max_bytes", st.KeyMaxBytes)
}

func (s *Server) serve(srv *fasthttp.Server, ln net.Listener, name string) {
	defer s.serveWG.Done()
	if err := srv.Serve(ln); err != nil && !s.stopped.Load() {
		s.log.Error("listener stopped", "listener", name, "err", err.Error())
	}
}

func (s *Server) flushLoop() {
	defer close(s.flushDone)
	t := time.NewTicker(s.cfg.UsageFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.flushStop:
			return
		case <-t.C:
			s.flushUsage()
		}
	}
}

// flushLocked writes the usage counted so far to the store, one flush at a
// time: when it returns, every verification counted before the call is in
// the store or (after a store error) back among the pending counts, never
// in between (the rotation guardrail relies on that).
func (s *Server) flushLocked(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	return s.v.FlushUsage(ctx)
}

func (s *Server) flushUsage() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.flushLocked(ctx); err != nil {
		s.metrics.flushErrors.Add(1)
		s.log.Warn("usage flush failed; counts kept for the next flush", "err", err.Error())
	}
}

// Addr returns the bound verify address (Config.Addr before Start).
func (s *Server) Addr() string {
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.cfg.Addr
}

// AdminAddr returns the bound admin address (Config.AdminAddr before Start).
func (s *Server) AdminAddr() string {
	if s.adminLn != nil {
		return s.adminLn.Addr().String()
	}
	return s.cfg.AdminAddr
}

// AdminToken returns the admin bearer token in force.
func (s *Server) AdminToken() string { return s.adminToken }

// AdminTokenPath returns the file the admin token was generated into (or
// read from, in the data directory); "" when it was given explicitly.
func (s *Server) AdminTokenPath() string { return s.adminPath }

// Verifier returns the server's Verifier.
func (s *Server) Verifier() *engine.Verifier { return s.v }

// Shutdown turns /readyz to 503, waits ShutdownDelay, stops accepting,
// waits for in-flight requests to finish (or ctx to end), and flushes usage
// to the store. The store itself is closed by its owner afterwards.
// Calling it again returns the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() { s.shutErr = s.shutdown(ctx) })
	return s.shutErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.ready.Store(false)
	if !s.started.Load() {
		return nil
	}
	s.log.Info("shutting down: draining in-flight requests")
	if d := s.cfg.ShutdownDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	s.stopped.Store(true)
	var shutErrs [3]error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		shutErrs[2] = s.stopGRPC(ctx)
	}()
	for i, srv := range []*fasthttp.Server{s.verifySrv, s.adminSrv} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			shutErrs[i] = srv.ShutdownWithContext(ctx)
		}()
	}
	wg.Wait()
	errs := shutErrs[:]
	// fasthttp's Shutdown only closes the listeners its Serve has already
	// registered: close them here too, so that a Serve goroutine not yet
	// scheduled when Shutdown ran returns instead of serving forever.
	s.ln.Close()
	s.adminLn.Close()
	s.serveWG.Wait()
	if s.tlsStop != nil {
		close(s.tlsStop)
		<-s.tlsDone
	}
	if s.jwksImp != nil {
		s.jwksImp.shutdown()
	}
	close(s.flushStop)
	<-s.flushDone
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.flushLocked(fctx); err != nil {
		s.log.Error("final usage flush failed", "err", err.Error())
		errs = append(errs, err)
	}
	s.log.Info("shut down")
	return errors.Join(errs...)
}
