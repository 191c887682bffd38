package server

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/valyala/fasthttp"
)

// Result slots of the verification counters: engine codes (CodeOK = 0 is
// "ok"), then "invalid_request" (a malformed required project) and
// "unavailable".
const (
	resultInvalidRequest = 30
	resultUnavailable    = 31
	numResults           = 32
	metricStripes        = 16 // power of two
)

// Upper bounds (seconds) of the verify latency histogram buckets.
var latencyBounds = []float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
}

var latencyBoundsNs = func() []int64 {
	out := make([]int64, len(latencyBounds))
	for i, b := range latencyBounds {
		out[i] = int64(b * 1e9)
	}
	return out
}()

// metricStripe is one connection-hashed shard of the verify counters. It
// holds plain atomics (no lock); stripes are padded apart so that
// connections on different stripes never share a cache line.
type metricStripe struct {
	_       [64]byte
	results [numResults]atomic.Uint64
	buckets [16]atomic.Uint64 // len(latencyBounds)+1 (the last is +Inf)
	sumNs   atomic.Int64
	_       [64]byte
}

type verifyMetrics struct {
	stripes     [metricStripes]metricStripe
	flushErrors atomic.Uint64
}

func newVerifyMetrics() *verifyMetrics { return new(verifyMetrics) }

// observe counts one verification with its result slot and duration. The
// stripe is chosen by connection, so one connection's requests (served by
// one goroutine at a time) stay on one stripe.
func (m *verifyMetrics) observe(connID uint64, result int, d time.Duration) {
	st := &m.stripes[connID&(metricStripes-1)]
	st.results[result].Add(1)
	ns := int64(d)
	i := 0
	for i < len(latencyBoundsNs) && ns > latencyBoundsNs[i] {
		i++
	}
	st.buckets[i].Add(1)
	st.sumNs.Add(ns)
}

// adminMetrics counts admin requests by route template and status. The
// admin API is not a hot path: a mutex and a map are fine.
type adminMetrics struct {
	mu sync.Mutex
	m  map[adminKey]uint64

	authFailures  atomic.Uint64 // failed admin authentications
	auditFailures atomic.Uint64 // audit records that could not be written
}

type adminKey struct {
	method, route string
	status        int
}

// Label values of jwtgate_admin_requests_total come from fixed sets, so that
// no client can grow the series (a raw method label once let 300 junk
// methods make 302 series). Routes are the templates above or "other".
var adminMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// adminStatuses are the statuses counted as themselves; others are "other".
var adminStatuses = []int{200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 431, 500, 503}

func methodLabel(m string) string {
	for _, k := range adminMethods {
		if m == k {
			return k
		}
	}
	return "other"
}

func statusLabel(status int) int {
	if slices.Contains(adminStatuses, status) {
		return status
	}
	return 0 // printed as "other"
}

func (a *adminMetrics) inc(method, route string, status int) {
	method, status = methodLabel(method), statusLabel(status)
	a.mu.Lock()
	if a.m == nil {
		a.m = make(map[adminKey]uint64)
	}
	a.m[adminKey{method, route, status}]++
	a.mu.Unlock()
}

var ctPrometheus = []byte("text/plain; version=0.0.4; charset=utf-8")

func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) {
	var b bytes.Buffer
	s.WriteMetrics(&b)
	ctx.Response.Header.SetContentTypeBytes(ctPrometheus)
	ctx.SetBody(b.Bytes())
}

// WriteMetrics writes every metric in the Prometheus text exposition
// format (version 0.0.4).
func (s *Server) WriteMetrics(w io.Writer) {
	var b []byte
	m := s.metrics

	var results [numResults]uint64
	var buckets [16]uint64
	var sumNs int64
	for i := range m.stripes {
		st := &m.stripes[i]
		for r := range results {
			results[r] += st.results[r].Load()
		}
		for j := range buckets {
			buckets[j] += st.buckets[j].Load()
		}
		sumNs += st.sumNs.Load()
	}

	b = append(b, "# HELP jwtgate_verifications_total Verifications answered by /v1/verify, by result (ok, a verify error code listed in docs/API.md, invalid_request or unavailable).\n# TYPE jwtgate_verifications_total counter\n"...)
	b = appendResult(b, "ok", results[engine.CodeOK])
	for _, c := range engine.Codes() {
		b = appendResult(b, c.String(), results[c])
	}
	b = appendResult(b, "invalid_request", results[resultInvalidRequest])
	b = appendResult(b, "unavailable", results[resultUnavailable])

	b = append(b, "# HELP jwtgate_verify_duration_seconds Time to answer a /v1/verify request, in the handler.\n# TYPE jwtgate_verify_duration_seconds histogram\n"...)
	var cum uint64
	for i, le := range latencyBounds {
		cum += buckets[i]
		b = append(b, `jwtgate_verify_duration_seconds_bucket{le="`...)
		b = strconv.AppendFloat(b, le, 'g', -1, 64)
		b = append(b, `"} `...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	cum += buckets[len(latencyBounds)]
	b = append(b, `jwtgate_verify_duration_seconds_bucket{le="+Inf"} `...)
	b = strconv.AppendUint(b, cum, 10)
	b = append(b, "\njwtgate_verify_duration_seconds_sum "...)
	b = strconv.AppendFloat(b, float64(sumNs)/1e9, 'g', -1, 64)
	b = append(b, "\njwtgate_verify_duration_seconds_count "...)
	b = strconv.AppendUint(b, cum, 10)
	b = append(b, '\n')

	st := s.v.Stats()
	b = appendMetric(b, "jwtgate_key_cache_hits_total", "counter", "Key cache lookups that found the key.", float64(st.KeyHits))
	b = appendMetric(b, "jwtgate_key_cache_misses_total", "counter", "Key cache lookups of a kid that may be registered but was not cached.", float64(st.KeyMisses))
	b = appendMetric(b, "jwtgate_key_store_reads_total", "counter", "Keys read from the key store by the key cache.", float64(st.KeyLoads))
	b = appendMetric(b, "jwtgate_key_cache_size", "gauge", "Prepared keys held in the key cache.", float64(st.KeySize))
	b = appendMetric(b, "jwtgate_key_cache_bytes", "gauge", "Estimated memory of the prepared keys held in the key cache, in bytes.", float64(st.KeyBytes))
	b = appendMetric(b, "jwtgate_key_cache_max_bytes", "gauge", "The key cache's memory bound (--key-cache-bytes), in bytes.", float64(st.KeyMaxBytes))
	b = appendMetric(b, "jwtgate_registry_kids", "gauge", "Kids in the in-memory index of the key registry.", float64(st.IndexedKIDs))
	indexReady := 0.0
	if st.IndexReady {
		indexReady = 1
	}
	b = appendMetric(b, "jwtgate_registry_index_ready", "gauge", "1 when the registry index is complete: unknown kids are refused without a store read.", indexReady)
	b = appendMetric(b, "jwtgate_negative_cache_size", "gauge", "Unknown kids remembered by the negative cache.", float64(st.NegativeSize))
	b = appendMetric(b, "jwtgate_token_cache_hits_total", "counter", "Token cache lookups that found a verified token.", float64(st.TokenHits))
	b = appendMetric(b, "jwtgate_token_cache_misses_total", "counter", "Token cache lookups that missed.", float64(st.TokenMisses))
	b = appendMetric(b, "jwtgate_token_cache_size", "gauge", "Verified tokens in the token cache.", float64(st.TokenSize))
	b = appendMetric(b, "jwtgate_token_cache_bytes", "gauge", "Memory held by the token cache's entries (bounded by --token-cache-bytes).", float64(st.TokenBytes))
	b = appendMetric(b, "jwtgate_usage_flush_errors_total", "counter", "Failed writes of key usage to the store.", float64(m.flushErrors.Load()))
	ready := 0.0
	if s.ready.Load() && !s.draining.Load() {
		ready = 1
	}
	b = appendMetric(b, "jwtgate_ready", "gauge", "1 when /readyz answers 200.", ready)
	if hr, ok := s.store.(HealthReporter); ok {
		h := 0.0
		if ok, _ := hr.Health(); ok {
			h = 1
		}
		b = appendMetric(b, "jwtgate_store_healthy", "gauge", "1 when the key store reports itself healthy.", h)
	}

	b = append(b, "# HELP jwtgate_admin_requests_total Admin API requests by method, route and status.\n# TYPE jwtgate_admin_requests_total counter\n"...)
	s.admin.mu.Lock()
	keys := make([]adminKey, 0, len(s.admin.m))
	for k := range s.admin.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y adminKey) int {
		if x.route != y.route {
			return cmpStr(x.route, y.route)
		}
		if x.method != y.method {
			return cmpStr(x.method, y.method)
		}
		return x.status - y.status
	})
	for _, k := range keys {
		b = append(b, `jwtgate_admin_requests_total{method="`...)
		b = append(b, k.method...)
		b = append(b, `",route="`...)
		b = append(b, k.route...)
		b = append(b, `",status="`...)
		if k.status == 0 {
			b = append(b, "other"...)
		} else {
			b = strconv.AppendInt(b, int64(k.status), 10)
		}
		b = append(b, `"} `...)
		b = strconv.AppendUint(b, s.admin.m[k], 10)
		b = append(b, '\n')
	}
	s.admin.mu.Unlock()
	b = appendMetric(b, "jwtgate_admin_auth_failures_total", "counter", "Admin requests refused for a missing, unknown or revoked credential.", float64(s.admin.authFailures.Load()))
	b = appendMetric(b, "jwtgate_audit_write_failures_total", "counter", "Admin changes whose audit record could not be written (each is logged in full).", float64(s.admin.auditFailures.Load()))
	w.Write(b)
	if mw, ok := s.store.(MetricsWriter); ok {
		mw.WriteMetrics(w)
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func appendResult(b []byte, result string, n uint64) []byte {
	b = append(b, `jwtgate_verifications_total{result="`...)
	b = append(b, result...)
	b = append(b, `"} `...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, '\n')
}

func appendMetric(b []byte, name, typ, help string, v float64) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, help...)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	b = append(b, '\n')
	b = append(b, name...)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	return append(b, '\n')
}
