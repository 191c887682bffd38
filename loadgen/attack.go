package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/valyala/fasthttp"
)

// Bounds and defaults of an attack.
const (
	MaxDuration        = time.Hour
	DefaultConnections = 64
	DefaultTimeout     = 5 * time.Second
	DefaultSamples     = 5
	maxSampleBody      = 1024
	// resultBatch is how many results a worker hands to the collector at
	// once: one channel operation (and wake-up) per batch, not per request.
	resultBatch = 64
)

// AttackConfig configures Attack.
type AttackConfig struct {
	Name     string   // attack name in the results (default "loadgen")
	Targets  []Target // sent in order, cycling
	Rate     Rate
	Duration time.Duration // 0 < Duration <= MaxDuration
	// Connections bounds open connections per host (default 64).
	Connections int
	// Workers is the initial number of sending goroutines (default
	// Connections); more are started, up to MaxWorkers (default
	// 4×Connections), when all are busy, as Vegeta does.
	Workers     int
	MaxWorkers  int
	Timeout     time.Duration // per request (default 5s)
	NoKeepAlive bool          // close each connection after one request
	// AllowRemote permits targets that are not on a loopback address.
	AllowRemote bool
	// TLSConfig is used for https:// targets (nil: the system roots).
	TLSConfig *tls.Config
	// Results, when set, receives every result in Vegeta's binary (gob)
	// format, so `vegeta report` and `vegeta plot` can read it.
	Results io.Writer
	// Status, when set, is called about once a second during the attack.
	Status func(Status)
	// Samples is how many mismatches are kept in full (default 5).
	Samples int
	// SLOs are latency objectives the report checks (Report.Gates); the
	// latency at each one's quantile is recorded in Report.Quantiles.
	SLOs SLOs
	// Shard, when set, makes this one of several generators: it sends
	// only its share of the targets at its share of the rate.
	Shard Shard
}

// Status is a live snapshot of an attack.
type Status struct {
	Elapsed    time.Duration
	Requested  float64 // current requested rate, per second
	Done       uint64  // responses (or errors) so far
	Rate       float64 // responses per second over the last interval
	Mismatches uint64
	Errors     uint64
	Workers    int
}

// Mismatch is a response that did not carry the expected verdict. It holds
// the response, never the token.
type Mismatch struct {
	Line            int    `json:"line"` // of the target in its file
	Expect          string `json:"expect"`
	Got             string `json:"got"`
	Status          int    `json:"status"`
	WWWAuthenticate string `json:"www_authenticate,omitempty"`
	Body            string `json:"body,omitempty"`
	Error           string `json:"error,omitempty"` // transport error
}

// workerStats are one worker's counters; the status goroutine reads them.
type workerStats struct {
	done       atomic.Uint64
	mismatches atomic.Uint64
	errors     atomic.Uint64
	sent       [NumClasses]atomic.Uint64
	bad        [NumClasses]atomic.Uint64
	_          [64]byte // keep workers' counters off each other's cache lines
}

var schemeHTTPS = []byte("https")

type run struct {
	cfg     AttackConfig
	clients map[string]*fasthttp.HostClient
	began   time.Time
	next    atomic.Uint64
	seqMu   sync.Mutex
	seq     uint64
	results chan []vegeta.Result
	batches sync.Pool

	mu      sync.Mutex
	workers []*workerStats
	samples []Mismatch
}

// Attack sends cfg.Targets at cfg.Rate for cfg.Duration, checks every
// response against the target's expected verdict, and reports. It returns
// an error only when the attack could not run; mismatches and transport
// errors are in the report (Report.OK). Cancelling ctx stops sending and
// lets requests in flight finish.
func Attack(ctx context.Context, cfg AttackConfig) (*Report, error) {
	if cfg.Shard.N > 1 {
		n := len(cfg.Targets)
		cfg.Targets, cfg.Rate = cfg.Shard.Targets(cfg.Targets), cfg.Shard.Rate(cfg.Rate)
		if len(cfg.Targets) == 0 {
			return nil, fmt.Errorf("attack: shard %s of %d targets is empty: use fewer shards or more targets", cfg.Shard, n)
		}
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("attack: no targets")
	}
	if cfg.Duration <= 0 || cfg.Duration > MaxDuration {
		return nil, fmt.Errorf("attack: duration must be between 0 and %s", MaxDuration)
	}
	if cfg.Rate.Start.Freq <= 0 {
		return nil, errors.New("attack: no rate")
	}
	if cfg.Name == "" {
		cfg.Name = "loadgen"
	}
	if cfg.Connections <= 0 {
		cfg.Connections = DefaultConnections
	}
	if cfg.Workers <= 0 {
		cfg.Workers = cfg.Connections
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 4 * cfg.Connections
	}
	cfg.MaxWorkers = max(cfg.MaxWorkers, cfg.Workers)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Samples <= 0 {
		cfg.Samples = DefaultSamples
	}
	r := &run{cfg: cfg, clients: map[string]*fasthttp.HostClient{}, results: make(chan []vegeta.Result, 256)}
	r.batches.New = func() any { return make([]vegeta.Result, 0, resultBatch) }
	for i := range cfg.Targets {
		t := &cfg.Targets[i]
		if _, ok := r.clients[t.host]; ok {
			continue
		}
		if !cfg.AllowRemote {
			if err := CheckLoopbackURL(t.URL); err != nil {
				return nil, err
			}
		}
		r.clients[t.host] = &fasthttp.HostClient{
			Addr: t.addr, IsTLS: t.tls, TLSConfig: cfg.TLSConfig, MaxConns: cfg.Connections,
			ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
			MaxIdemponentCallAttempts: 1, NoDefaultUserAgentHeader: true,
			DisableHeaderNamesNormalizing: true, DisablePathNormalizing: true,
			MaxConnWaitTimeout: cfg.Timeout,
		}
	}

	// The collector: Vegeta metrics and the results encoder.
	var metrics vegeta.Metrics
	var enc vegeta.Encoder
	if cfg.Results != nil {
		enc = vegeta.NewEncoder(cfg.Results)
	}
	var encErr error
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for batch := range r.results {
			for i := range batch {
				metrics.Add(&batch[i])
				if enc != nil && encErr == nil {
					encErr = enc(&batch[i])
				}
			}
			clear(batch)             // drop the strings it holds before pooling
			r.batches.Put(batch[:0]) //nolint:staticcheck // slice header
		}
	}()

	cpu0 := cpuTime()
	r.began = time.Now()
	pacer := cfg.Rate.Pacer(cfg.Duration)
	stopStatus := r.startStatus(pacer)
	hits := r.pace(ctx, pacer)
	wall := time.Since(r.began)
	cpu := cpuTime() - cpu0
	stopStatus()
	close(r.results)
	<-collected
	for _, c := range r.clients {
		c.CloseIdleConnections()
	}
	metrics.Close()
	if encErr != nil {
		return nil, fmt.Errorf("attack: writing results: %w", encErr)
	}
	return r.report(&metrics, hits, wall, cpu), nil
}

// pace is Vegeta's Attacker.Attack loop: it asks the pacer when the next
// hit is due and hands a tick to a free worker, starting one more worker
// when all are busy.
func (r *run) pace(ctx context.Context, p vegeta.Pacer) uint64 {
	ticks := make(chan struct{})
	var wg sync.WaitGroup
	workers := 0
	spawn := func() {
		workers++
		ws := new(workerStats)
		r.mu.Lock()
		r.workers = append(r.workers, ws)
		r.mu.Unlock()
		wg.Add(1)
		go func() { defer wg.Done(); r.work(ticks, ws) }()
	}
	for range r.cfg.Workers {
		spawn()
	}
	var count uint64
	done := ctx.Done()
loop:
	for {
		elapsed := time.Since(r.began)
		if elapsed > r.cfg.Duration {
			break
		}
		wait, stop := p.Pace(elapsed, count)
		if stop {
			break
		}
		if wait > 0 {
			time.Sleep(wait)
		}
		if workers < r.cfg.MaxWorkers {
			select {
			case ticks <- struct{}{}:
				count++
				continue
			case <-done:
				break loop
			default:
				spawn()
			}
		}
		select {
		case ticks <- struct{}{}:
			count++
		case <-done:
			break loop
		}
	}
	close(ticks)
	wg.Wait()
	return count
}

// work is the send loop: one request and one response object reused for
// every hit, header bytes copied from the prepared target, the verdict read
// with two byte searches.
func (r *run) work(ticks <-chan struct{}, ws *workerStats) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.DisableNormalizing()
	resp.Header.DisableNormalizing()
	n := uint64(len(r.cfg.Targets))
	batch := r.batches.Get().([]vegeta.Result)
	defer func() {
		if len(batch) > 0 {
			r.results <- batch
		}
	}()
	for range ticks {
		t := &r.cfg.Targets[(r.next.Add(1)-1)%n]
		hc := r.clients[t.host]
		req.Reset()
		req.Header.SetMethodBytes(t.method)
		req.SetRequestURIBytes(t.uri)
		req.Header.SetHostBytes(t.hostHdr)
		if t.tls {
			// The URI is path-only; without the scheme fasthttp's
			// HostClient refuses to send it over TLS.
			req.URI().SetSchemeBytes(schemeHTTPS)
		}
		for i := range t.headers {
			req.Header.AddBytesKV(t.headers[i][0], t.headers[i][1])
		}
		if t.body != nil {
			req.SetBodyRaw(t.body)
		}
		if r.cfg.NoKeepAlive {
			req.SetConnectionClose()
		}
		res := vegeta.Result{Attack: r.cfg.Name, Method: t.Method, URL: t.URL, BytesOut: uint64(len(t.body))}
		// Timestamp and sequence number are taken together, as Vegeta does,
		// so that results ordered by Seq have monotonic timestamps (its
		// plot requires it).
		r.seqMu.Lock()
		res.Timestamp = time.Now()
		res.Seq = r.seq
		r.seq++
		r.seqMu.Unlock()
		err := hc.Do(req, resp)
		res.Latency = time.Since(res.Timestamp)
		ws.sent[t.Expect].Add(1)
		if err != nil {
			res.Error = err.Error()
			ws.errors.Add(1)
			r.sample(t, Unknown, 0, nil, nil, res.Error)
		} else {
			body := resp.Body()
			res.Code = uint16(resp.StatusCode())
			res.BytesIn = uint64(len(body))
			wa := resp.Header.Peek("WWW-Authenticate")
			if got, ok := Check(t.Expect, int(res.Code), wa, body); !ok {
				ws.mismatches.Add(1)
				ws.bad[t.Expect].Add(1)
				res.Error = "loadgen: expected " + t.Expect.String() + ", got " + describe(int(res.Code), got)
				r.sample(t, got, int(res.Code), wa, body, "")
			}
		}
		ws.done.Add(1)
		if batch = append(batch, res); len(batch) == resultBatch {
			r.results <- batch
			batch = r.batches.Get().([]vegeta.Result)
		}
	}
}

func describe(status int, got Class) string {
	if got == Unknown {
		return fmt.Sprintf("HTTP %d", status)
	}
	return fmt.Sprintf("HTTP %d %s", status, got)
}

func (r *run) sample(t *Target, got Class, status int, wa, body []byte, errText string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) >= r.cfg.Samples {
		return
	}
	if len(body) > maxSampleBody {
		body = body[:maxSampleBody]
	}
	gotName := got.String()
	if got == Unknown {
		gotName = "unknown"
	}
	r.samples = append(r.samples, Mismatch{Line: t.Line, Expect: t.Expect.String(), Got: gotName,
		Status: status, WWWAuthenticate: string(wa), Body: string(body), Error: errText})
}

func (r *run) totals() (done, mism, errs uint64, workers int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.workers {
		done += w.done.Load()
		mism += w.mismatches.Load()
		errs += w.errors.Load()
	}
	return done, mism, errs, len(r.workers)
}

func (r *run) startStatus(p vegeta.Pacer) (stop func()) {
	if r.cfg.Status == nil {
		return func() {}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last uint64
		lastAt := r.began
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				done, mism, errs, w := r.totals()
				st := Status{Elapsed: now.Sub(r.began), Done: done, Mismatches: mism, Errors: errs, Workers: w}
				if d := now.Sub(lastAt).Seconds(); d > 0 {
					st.Rate = float64(done-last) / d
				}
				if rp, ok := p.(interface{ Rate(time.Duration) float64 }); ok {
					st.Requested = rp.Rate(st.Elapsed)
				} else if cp, ok := p.(vegeta.Rate); ok {
					st.Requested = hz(cp)
				}
				last, lastAt = done, now
				r.cfg.Status(st)
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// cores is how many CPUs the generator may use.
func cores() int { return min(runtime.GOMAXPROCS(0), runtime.NumCPU()) }
