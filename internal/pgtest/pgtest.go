// Package pgtest gives tests a PostgreSQL database of their own.
//
// Start returns the DSN of a fresh, empty database that is dropped when the
// test ends. The server is, in order of preference:
//
//   - the one named by JWTGATE_TEST_PG_DSN (a DSN whose user may CREATE
//     DATABASE; each test gets its own database on it);
//   - a throwaway server this package starts once per test process from the
//     PostgreSQL server binaries (initdb, postgres) found on PATH, in
//     $PG_BIN, or under /usr/lib/postgresql/<version>/bin: a temp data
//     directory, listening only on 127.0.0.1 at a free port, with its socket
//     in the temp directory; as root it runs as the user "nobody" (initdb
//     refuses root). Stop (or Main) stops it and removes the directory; the
//     server also dies with the test process.
//
// With no server binaries the test is skipped with a message saying how to
// get PostgreSQL, unless JWTGATE_REQUIRE_PG=1 (CI sets it), which makes it a
// failure.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names an existing server to use instead of starting one.
const EnvDSN = "JWTGATE_TEST_PG_DSN"

// EnvRequire, when "1", turns "no PostgreSQL available" into a test failure.
const EnvRequire = "JWTGATE_REQUIRE_PG"

// HowToGet is the advice printed when no PostgreSQL is available.
const HowToGet = "PostgreSQL tests SKIPPED: no PostgreSQL server binaries (initdb, postgres) found on PATH, in $PG_BIN " +
	"or under /usr/lib/postgresql/*/bin, and " + EnvDSN + " is not set. " +
	"Install them (Debian/Ubuntu: apt-get install -y postgresql) or point " + EnvDSN +
	" at a server whose user may CREATE DATABASE. Set " + EnvRequire + "=1 to make this a failure."

var (
	mu      sync.Mutex
	srv     *server
	srvErr  error
	started bool
	dbSeq   int
)

// Start returns the DSN of a new empty database for t, dropped when t ends.
func Start(t testing.TB) string {
	t.Helper()
	base, err := baseDSN()
	if err != nil {
		if errors.Is(err, errNoBinaries) {
			if os.Getenv(EnvRequire) == "1" {
				t.Fatalf("%s=1 but no PostgreSQL is available: %v", EnvRequire, err)
			}
			t.Skip(HowToGet)
		}
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer admin.Close(ctx)
	mu.Lock()
	dbSeq++
	name := fmt.Sprintf("jwtgate_t%d_%d_%s", os.Getpid(), dbSeq, randHex(4))
	mu.Unlock()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(base, name)
}

// Main runs the tests and then stops the server Start may have started:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the throwaway server, if one was started, and removes its
// directory. Start may start a new one afterwards.
func Stop() {
	mu.Lock()
	s := srv
	srv, srvErr, started = nil, nil, false
	mu.Unlock()
	if s != nil {
		s.stop()
	}
}

func baseDSN() (string, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn, nil
	}
	mu.Lock()
	defer mu.Unlock()
	if !started {
		started = true
		srv, srvErr = startServer()
	}
	if srvErr != nil {
		return "", srvErr
	}
	return srv.dsn, nil
}

func withDatabase(dsn, db string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + db
		return u.String()
	}
	return dsn + " dbname=" + db // keyword/value form
}

var errNoBinaries = errors.New("no PostgreSQL server binaries found")

// FindBinaries returns the directory holding initdb and postgres.
func FindBinaries() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("PG_BIN"); d != "" && has(d) {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(r)) {
			return filepath.Dir(r), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return verOf(dirs[i]) > verOf(dirs[j]) })
	dirs = append(dirs, "/usr/local/pgsql/bin", "/usr/pgsql/bin")
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", errNoBinaries
}

func verOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

type server struct {
	dir  string
	dsn  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startServer() (*server, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", "jwtgate-pg-")
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		uid, gid := uint32(65534), uint32(65534)
		if u, err := user.Lookup("nobody"); err == nil {
			a, _ := strconv.Atoi(u.Uid)
			b, _ := strconv.Atoi(u.Gid)
			uid, gid = uint32(a), uint32(b)
		}
		cred = &syscall.Credential{Uid: uid, Gid: gid, NoSetGroups: true}
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + dir, "LC_ALL=C", "LANG=C", "TZ=UTC"}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--no-sync", "-E", "UTF8", "--locale=C", "--no-instructions")
	initdb.Env = env
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		// --no-instructions is PostgreSQL 14+; retry without it.
		initdb = exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
			"--no-sync", "-E", "UTF8", "--locale=C")
		initdb.Env, initdb.Dir = env, dir
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		os.RemoveAll(data)
		if out2, err2 := initdb.CombinedOutput(); err2 != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("initdb: %v\n%s\n%s", err2, out, out2)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := runPostgres(bin, dir, data, env, cred, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func runPostgres(bin, dir, data string, env []string, cred *syscall.Credential, port int) (*server, error) {
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if cred != nil {
		_ = logf.Chown(int(cred.Uid), int(cred.Gid))
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning", "-c", "logging_collector=off")
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig fires when the thread that started the child exits: start it
	// from a goroutine that keeps its thread locked for good, so the server
	// dies with the test process and never before.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	startErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		startErr <- cmd.Start()
		select {}
	}()
	if err := <-startErr; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return nil, fmt.Errorf("postgres exited at start:\n%s", log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, dsn)
		cancel()
		if err == nil {
			c.Close(context.Background())
			return &server{dir: dir, dsn: dsn, cmd: cmd, done: done}, nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return nil, fmt.Errorf("postgres did not accept connections in 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

// removeStale removes the directories of throwaway servers whose test
// process was killed (the server died with it, the directory stayed).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "jwtgate-pg-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 0 &&
				syscall.Kill(pid, 0) != syscall.ESRCH {
				continue // still running
			}
		}
		os.RemoveAll(d)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
