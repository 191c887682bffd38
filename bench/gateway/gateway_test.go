// Package gateway_test holds BenchmarkGateway, apart from the suite in
// bench/ so that comparing the suite against commits that predate the gRPC
// listener and the middleware (make bench-compare, bench-gate) still builds.
package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/jwtgate/jwtgate/bench"
	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/internal/cpuinfo"
	"github.com/jwtgate/jwtgate/middleware"
	"github.com/jwtgate/jwtgate/server"
)

var modes = []string{"serial", "parallel"}

// TestMain prints the CPU identity before benchmarks; with
// JWTGATE_BENCH_GATEWAY_CHILD=1 the binary is instead the jwtgate server
// process that BenchmarkGateway measures.
func TestMain(m *testing.M) {
	if os.Getenv(envGatewayChild) == "1" {
		os.Exit(gatewayChildMain())
	}
	cpuinfo.PrintWhenBenchmarking()
	code := m.Run()
	stopGatewayChild()
	os.Exit(code)
}

func processCPU() time.Duration {
	d, _ := cpuinfo.ProcessCPU()
	return d
}

func reportCPU(b *testing.B, cpu0 time.Duration) {
	if b.N > 0 && cpu0 > 0 {
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// envGatewayChild makes the test binary run as the benchmark's jwtgate
// server process (see gatewayChildMain).
const envGatewayChild = "JWTGATE_BENCH_GATEWAY_CHILD"

// gatewayChildMain is a real jwtgate server (verify listener and gRPC
// ext_authz listener on loopback, memory store, the bench key) in its own
// process, so that its CPU time is its alone. It prints "<verify addr>
// <grpc addr>", then answers each "cpu" line on stdin with its process CPU
// time in nanoseconds; EOF shuts it down.
func gatewayChildMain() int {
	s, err := server.New(server.Config{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Store: engine.NewMemoryStore(), AdminToken: "bench-admin-token-0123456789",
		EngineOptions: []engine.Option{engine.WithMaxTTL(bench.TokenTTL)},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	k := &engine.Key{KID: bench.KID(2048), Project: bench.Project, Label: "bench", Public: &et.Key(bench.KeyName(2048)).PublicKey}
	if _, err := s.Verifier().AddKey(context.Background(), k); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if p := os.Getenv("JWTGATE_BENCH_CHILD_CPUPROFILE"); p != "" { // for looking into the server's cost
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	fmt.Println(s.Addr(), s.GRPCAddr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "cpu" {
			fmt.Println(int64(processCPU()))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.Shutdown(ctx)
	return 0
}

// gatewayChild is the running server process.
type gatewayChild struct {
	cmd      *exec.Cmd
	in       io.WriteCloser
	out      *bufio.Reader
	verify   string
	grpcAddr string
	mu       sync.Mutex
}

var (
	childOnce sync.Once
	child     *gatewayChild
	childErr  error
)

// startGatewayChild starts the server process once per benchmark run.
func startGatewayChild(b *testing.B) *gatewayChild {
	childOnce.Do(func() {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envGatewayChild+"=1")
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			childErr = err
			return
		}
		outp, err := cmd.StdoutPipe()
		if err != nil {
			childErr = err
			return
		}
		if err := cmd.Start(); err != nil {
			childErr = err
			return
		}
		c := &gatewayChild{cmd: cmd, in: in, out: bufio.NewReader(outp)}
		line, err := c.out.ReadString('\n')
		if f := strings.Fields(line); err != nil || len(f) != 2 {
			childErr = fmt.Errorf("server process: %q %v", line, err)
			cmd.Process.Kill()
			return
		} else {
			c.verify, c.grpcAddr = f[0], f[1]
		}
		child = c
	})
	if childErr != nil {
		b.Fatal(childErr)
	}
	return child
}

func stopGatewayChild() {
	if child != nil {
		child.in.Close()
		child.cmd.Wait()
	}
}

// cpu returns the server process's CPU time.
func (c *gatewayChild) cpu(b *testing.B) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.in, "cpu\n"); err != nil {
		b.Fatal(err)
	}
	line, err := c.out.ReadString('\n')
	n, perr := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil || perr != nil {
		b.Fatalf("server CPU: %q %v %v", line, err, perr)
	}
	return time.Duration(n)
}

// envoyHeaders are the headers of a typical request that Envoy forwards to
// the authorization service, besides Authorization.
var envoyHeaders = map[string]string{
	":authority": "api.example.com", ":method": "GET", ":path": "/api/orders/42", ":scheme": "https",
	"user-agent": "curl/8.5.0", "accept": "*/*", "x-forwarded-proto": "https",
	"x-request-id": "6f1c2b1e-0f5b-4d3c-9a55-1d2e3f4a5b6c",
}

// BenchmarkGateway compares the ways into jwtgate for one cached token,
// each in the same run:
//
//   - path=http-cached: GET /v1/verify on the real server in its own
//     process, keep-alive fasthttp client; path=grpc-cached: Envoy's
//     Authorization/Check on the same process's gRPC listener. Both report
//     server-cpu-ns/op, the server process's CPU time per request (the
//     issue's target: gRPC at most 3× HTTP).
//   - path=grpc-bare: a gRPC health Check on the same listener, the floor
//     of any unary gRPC call.
//   - path=inprocess: the net/http middleware over a Verifier in this
//     process (no network), a handler answering 200; path=sidecar: the same
//     service calling the sidecar's /v1/verify with net/http before
//     answering. ns/op is what each adds to a request.
func BenchmarkGateway(b *testing.B) {
	tok := bench.Pool(2048)[0]
	auth := "Bearer " + string(tok)
	b.Run("path=http-cached", func(b *testing.B) {
		c := startGatewayChild(b)
		hc := &fasthttp.HostClient{Addr: c.verify, MaxConns: 64}
		newReq := func() (*fasthttp.Request, *fasthttp.Response) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://" + c.verify + "/v1/verify/api/orders/42")
			req.Header.Set("Authorization", auth)
			for k, v := range envoyHeaders {
				if !strings.HasPrefix(k, ":") {
					req.Header.Set(k, v)
				}
			}
			return req, resp
		}
		req, resp := newReq()
		if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("setup: %v %d %s", err, resp.StatusCode(), resp.Body())
		}
		gatewayLoop(b, c, func() func() bool {
			req, resp := newReq()
			return func() bool { return hc.Do(req, resp) == nil && resp.StatusCode() == 200 }
		})
	})
	b.Run("path=grpc-cached", func(b *testing.B) {
		c := startGatewayChild(b)
		cc, err := grpc.NewClient("passthrough:///"+c.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		client := authv3.NewAuthorizationClient(cc)
		h := map[string]string{"authorization": auth}
		for k, v := range envoyHeaders {
			h[k] = v
		}
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/api/orders/42", Host: "api.example.com", Scheme: "https", Headers: h},
		}}}
		ok := func() bool {
			resp, err := client.Check(context.Background(), req)
			return err == nil && codes.Code(resp.GetStatus().GetCode()) == codes.OK
		}
		if !ok() {
			b.Fatal("setup: Check did not allow the token")
		}
		gatewayLoop(b, c, func() func() bool { return ok })
	})
	b.Run("path=grpc-bare", func(b *testing.B) {
		// The gRPC floor: a health Check on the same listener (an empty
		// unary call), for what of grpc-cached is gRPC itself.
		c := startGatewayChild(b)
		cc, err := grpc.NewClient("passthrough:///"+c.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		hc := healthpb.NewHealthClient(cc)
		ok := func() bool {
			r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
			return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
		}
		if !ok() {
			b.Fatal("setup: health not SERVING")
		}
		gatewayLoop(b, c, func() func() bool { return ok })
	})
	b.Run("path=inprocess", func(b *testing.B) {
		v, err := bench.NewVerifier()
		if err != nil {
			b.Fatal(err)
		}
		h := middleware.New(v).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := middleware.Claims(r.Context()); !ok {
				w.WriteHeader(500)
			}
		}))
		serve := func() func() bool {
			req := httptest.NewRequest("GET", "/api/orders/42", nil)
			req.Header.Set("Authorization", auth)
			return func() bool {
				rec := response{}
				h.ServeHTTP(&rec, req)
				return rec.status == 0 || rec.status == 200
			}
		}
		if !serve()() {
			b.Fatal("setup: middleware refused the token")
		}
		clientLoop(b, serve)
	})
	b.Run("path=sidecar", func(b *testing.B) {
		c := startGatewayChild(b)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		url := "http://" + c.verify + "/v1/verify"
		call := func() func() bool {
			return func() bool {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", auth)
				resp, err := client.Do(req)
				if err != nil {
					return false
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode == 200
			}
		}
		if !call()() {
			b.Fatal("setup: sidecar refused the token")
		}
		clientLoop(b, call)
	})
}

// response is a minimal http.ResponseWriter that keeps nothing.
type response struct {
	h      http.Header
	status int
}

func (r *response) Header() http.Header {
	if r.h == nil {
		r.h = http.Header{}
	}
	return r.h
}
func (r *response) Write(p []byte) (int, error) { return len(p), nil }
func (r *response) WriteHeader(s int)           { r.status = s }

// gatewayLoop runs serial and parallel modes of op against the server
// process and reports its CPU time per request.
func gatewayLoop(b *testing.B, c *gatewayChild, newOp func() func() bool) {
	for _, mode := range modes {
		b.Run("mode="+mode, func(b *testing.B) {
			cpu0 := c.cpu(b)
			clientLoopMode(b, mode, newOp)
			b.StopTimer()
			if b.N > 0 {
				b.ReportMetric(float64(c.cpu(b)-cpu0)/float64(b.N), "server-cpu-ns/op")
			}
		})
	}
}

func clientLoop(b *testing.B, newOp func() func() bool) {
	for _, mode := range modes {
		b.Run("mode="+mode, func(b *testing.B) {
			cpu0 := processCPU()
			clientLoopMode(b, mode, newOp)
			b.StopTimer()
			reportCPU(b, cpu0)
		})
	}
}

func clientLoopMode(b *testing.B, mode string, newOp func() func() bool) {
	b.ReportAllocs()
	b.ResetTimer()
	if mode == "serial" {
		op := newOp()
		for range b.N {
			if !op() {
				b.Fatal("request refused or failed")
			}
		}
		return
	}
	var bad atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		op := newOp()
		for pb.Next() {
			if !op() {
				bad.Add(1)
			}
		}
	})
	if n := bad.Load(); n > 0 {
		b.Fatalf("%d requests refused or failed", n)
	}
}
