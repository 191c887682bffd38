package loadgen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/valyala/fasthttp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseMix(t *testing.T) {
	m, err := ParseMix(DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	if m.Total() != 100 || m.Weights[Valid] != 90 {
		t.Errorf("mix %v", m)
	}
	if got := m.String(); got != "valid=90,unsupported_algorithm=1,unknown_kid=3,expired=3,ttl_exceeded=1,audience_mismatch=1,invalid_signature=1" {
		t.Errorf("String() = %q", got)
	}
	back, err := ParseMix(m.String())
	if err != nil || back != m {
		t.Errorf("round trip: %v %v", back, err)
	}
	for _, bad := range []string{"", "valid", "valid=x", "valid=-1", "bogus=1", "ok=1", "valid=0", "valid=1,valid=2", "valid=200000"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q): no error", bad)
		}
	}
	var fv Mix
	if err := fv.Set("valid=3,expired=1"); err != nil || fv.Type() != "mix" {
		t.Fatal(err)
	}
	// The interleaving spreads classes: counts are exact per period and
	// within one token of the proportion in any prefix.
	counts := fv.Counts(10)
	if counts[Valid] != 8 || counts[Class(10)] != 2 { // 10 = expired
		t.Errorf("counts %v", counts)
	}
	pat := fv.pattern()
	if len(pat) != 4 || pat[0] != Valid {
		t.Errorf("pattern %v", pat)
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		mean float64
		ramp bool
		str  string
	}{
		{in: "500/s", mean: 500, str: "500/s"},
		{in: "500", mean: 500, str: "500/s"},
		{in: "50/100ms", mean: 500, str: "50/100ms"},
		{in: "30/1m", mean: 0.5, str: "30/1m0s"},
		{in: "100/s..2000/s", mean: 1050, ramp: true, str: "100/s..2000/s"},
	} {
		r, err := ParseRate(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if r.Mean() != tc.mean || r.Ramp() != tc.ramp || r.String() != tc.str {
			t.Errorf("%s: mean %v ramp %v string %q", tc.in, r.Mean(), r.Ramp(), r.String())
		}
	}
	for _, bad := range []string{"", "0/s", "-5/s", "x/s", "5/parsec", "2000000/s", "100/s..", "1/1000s"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q): no error", bad)
		}
	}
	// A ramp paces with Vegeta's LinearPacer, from start to end over d.
	r, _ := ParseRate("100/s..300/s")
	lp, ok := r.Pacer(10 * time.Second).(vegeta.LinearPacer)
	if !ok || lp.Slope != 20 || lp.Rate(10*time.Second) != 300 {
		t.Errorf("pacer %#v", r.Pacer(10*time.Second))
	}
	if got := RatePerSecond(2.5).Mean(); got != 2.5 {
		t.Errorf("RatePerSecond(2.5) = %v", got)
	}
}

func TestParseSLO(t *testing.T) {
	s, err := ParseSLO("p99=10ms")
	if err != nil || s.Quantile != 0.99 || s.Max != 10*time.Millisecond || s.String() != "p99=10ms" {
		t.Fatalf("%+v %v", s, err)
	}
	if s, err := ParseSLO("p99.9=2ms"); err != nil || s.Quantile < 0.9989 || s.Quantile > 0.9991 {
		t.Errorf("%+v %v", s, err)
	}
	if s, err := ParseSLO("max=1s"); err != nil || s.Quantile != 1 {
		t.Errorf("%+v %v", s, err)
	}
	for _, bad := range []string{"", "p99", "p0=1ms", "p100=1ms", "q99=1ms", "p99=-1ms", "p99=soon"} {
		if _, err := ParseSLO(bad); err == nil {
			t.Errorf("ParseSLO(%q): no error", bad)
		}
	}
}

// response builds a fasthttp response fixture as jwtgate sends it.
func response(status int, wwwAuth, body string) *fasthttp.Response {
	r := new(fasthttp.Response)
	r.SetStatusCode(status)
	if wwwAuth != "" {
		r.Header.Set("WWW-Authenticate", wwwAuth)
	}
	r.SetBodyString(body)
	return r
}

func TestCheck(t *testing.T) {
	cls := func(s string) Class { c, _ := ParseClass(s); return c }
	for _, tc := range []struct {
		name   string
		expect Class
		resp   *fasthttp.Response
		got    Class
		ok     bool
	}{
		{name: "valid", expect: Valid, resp: response(200, "", `{"valid":true}`), got: Valid, ok: true},
		{name: "expired", expect: cls("expired"),
			resp: response(401, `Bearer error="invalid_token", error_description="expired"`, `{"valid":false,"error":"expired"}`), got: cls("expired"), ok: true},
		{name: "header wins over body", expect: cls("expired"),
			resp: response(401, `Bearer error="invalid_token", error_description="expired"`, `{"error":"malformed"}`), got: cls("expired"), ok: true},
		{name: "missing token from body", expect: cls("missing_token"),
			resp: response(401, `Bearer realm="jwtgate"`, `{"valid":false,"error":"missing_token","message":"no"}`), got: cls("missing_token"), ok: true},
		{name: "wrong code", expect: cls("ttl_exceeded"),
			resp: response(401, `Bearer error="invalid_token", error_description="expired"`, ``), got: cls("expired")},
		{name: "accepted but should not be", expect: cls("ttl_exceeded"), resp: response(200, "", `{"valid":true}`), got: Valid},
		{name: "refused but valid", expect: Valid,
			resp: response(401, `Bearer error="invalid_token", error_description="invalid_signature"`, ``), got: cls("invalid_signature")},
		{name: "401 with unknown code", expect: cls("expired"),
			resp: response(401, `Bearer error_description="exp"`, `{"error":"valid"}`), got: Unknown},
		{name: "server error", expect: Valid, resp: response(503, "", `busy`), got: Unknown},
		{name: "401 that says valid", expect: Valid, resp: response(401, `Bearer error_description="valid"`, ``), got: Unknown},
		{name: "unterminated", expect: cls("expired"), resp: response(401, `Bearer error_description="expired`, ``), got: Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Check(tc.expect, tc.resp.StatusCode(), tc.resp.Header.Peek("WWW-Authenticate"), tc.resp.Body())
			if got != tc.got || ok != tc.ok {
				t.Errorf("Check = %v, %v; want %v, %v", got, ok, tc.got, tc.ok)
			}
		})
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count only")
	}
	resp := response(401, `Bearer error="invalid_token", error_description="audience_mismatch"`, `{}`)
	exp, _ := ParseClass("audience_mismatch")
	n := testing.AllocsPerRun(100, func() {
		Check(exp, resp.StatusCode(), resp.Header.Peek("WWW-Authenticate"), resp.Body())
	})
	if n != 0 {
		t.Errorf("Check allocates %v times", n)
	}
}

func TestLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/v1/verify", "http://127.9.9.9/", "http://[::1]:80/", "http://localhost:1/", "https://LOCALHOST/"} {
		if err := CheckLoopbackURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1/", "http://example.com/", "http://0.0.0.0:8080/", "http://[::]/", "ftp://127.0.0.1/", "http://127.0.0.1.example.com/", "http://localhost.evil/"} {
		if err := CheckLoopbackURL(u); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}

func TestReadTargetsRejectsBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"empty":      "",
		"no expect":  `{"method":"GET","url":"http://127.0.0.1/"}` + "\n",
		"bad expect": `{"method":"GET","url":"http://127.0.0.1/","header":{"X-Loadgen-Expect":["nope"]}}` + "\n",
		"not json":   "GET http://127.0.0.1/\n",
		"bad scheme": `{"method":"GET","url":"ftp://127.0.0.1/","header":{"X-Loadgen-Expect":["valid"]}}` + "\n",
	} {
		if _, err := ReadTargets(strings.NewReader(in), 0); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	tg, err := ReadTargets(strings.NewReader(strings.Repeat(`{"method":"GET","url":"http://127.0.0.1/v1/verify?project=a","header":{"X-Loadgen-Expect":["valid"]}}`+"\n", 5)), 3)
	if err != nil || len(tg) != 3 || string(tg[0].uri) != "/v1/verify?project=a" || tg[0].addr != "127.0.0.1:80" || tg[2].Line != 3 {
		t.Fatalf("%v %+v", err, tg)
	}
}

func sampleReport() *Report {
	return &Report{
		Name: "loadgen", Rate: "500/s", RequestedRate: 500, Duration: 10 * time.Second, Connections: 64, Workers: 64,
		Requests: 5000, SentRate: 499.9, Throughput: 499.5,
		Latency: Latency{P50: 412 * time.Microsecond, P90: 701 * time.Microsecond, P95: 812 * time.Microsecond,
			P99: 1234 * time.Microsecond, Max: 15678 * time.Microsecond, Mean: 450 * time.Microsecond},
		Expected: 4998, Success: 0.9996, Mismatches: 2,
		Classes:  []ClassCount{{"valid", 4500, 0}, {"expired", 250, 0}, {"ttl_exceeded", 250, 2}},
		Samples:  []Mismatch{{Line: 17, Expect: "ttl_exceeded", Got: "valid", Status: 200, Body: `{"valid":true,"project":"myapp"}`}},
		CPU:      CPU{Total: 1500 * time.Millisecond, PerRequest: 300 * time.Microsecond, Cores: 2, Share: 0.075},
		Warnings: []string{"sent 400.0 req/s, below the requested 500.0 req/s: the server answered too slowly for the connections and workers given"},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestReportTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.golden", b.Bytes())
	if sampleReport().OK() {
		t.Error("a report with mismatches is OK")
	}
}

func TestCapacityTableAndSVGGolden(t *testing.T) {
	slo, _ := ParseSLO("p99=10ms")
	res := &CapacityResult{SLO: "p99 <= 10ms", Capacity: 1500, Steps: []Step{
		{N: 1, Rate: 500, Achieved: 499.8, P50: 300 * time.Microsecond, SLOLatency: 2 * time.Millisecond, CPUShare: 0.1, Pass: true},
		{N: 2, Rate: 1000, Achieved: 999.1, P50: 350 * time.Microsecond, SLOLatency: 4 * time.Millisecond, CPUShare: 0.2, Pass: true},
		{N: 3, Rate: 2000, Achieved: 1700, P50: 9 * time.Millisecond, SLOLatency: 40 * time.Millisecond, CPUShare: 0.5, Why: "p99 40ms > 10ms; sent only 1700/s"},
		{N: 4, Rate: 1500, Achieved: 1499, P50: 500 * time.Microsecond, SLOLatency: 8 * time.Millisecond, CPUShare: 0.3, Pass: true},
	}}
	var b bytes.Buffer
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "capacity.golden", b.Bytes())
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if last := lines[len(lines)-1]; last != "capacity: 1500 req/s at p99 <= 10ms" {
		t.Errorf("last line %q", last)
	}
	var svg bytes.Buffer
	if err := res.WriteSVG(&svg, slo); err != nil {
		t.Fatal(err)
	}
	golden(t, "capacity.svg", svg.Bytes())
	if res.LowerBound() {
		t.Error("a search with a failing step is not a lower bound")
	}
}

// When no step failed, the capacity is only a lower bound, and the table
// and the chart say so.
func TestCapacityLowerBound(t *testing.T) {
	slo, _ := ParseSLO("p99=10ms")
	res := &CapacityResult{SLO: "p99 <= 10ms", Capacity: 2000, Steps: []Step{
		{N: 1, Rate: 1000, Achieved: 999, SLOLatency: 2 * time.Millisecond, Pass: true},
		{N: 2, Rate: 2000, Achieved: 1999, SLOLatency: 3 * time.Millisecond, Pass: true},
	}}
	want := "capacity: >= 2000 req/s at p99 <= 10ms (no step failed; raise --max or --max-steps)"
	if got := res.Line(); got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
	var svg bytes.Buffer
	if err := res.WriteSVG(&svg, slo); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg.String(), "capacity: &gt;= 2000 req/s") || !strings.Contains(svg.String(), "raise --max or --max-steps") {
		t.Errorf("the SVG does not say the capacity is a lower bound:\n%s", svg.String())
	}
	res.Steps = append(res.Steps, Step{N: 3, Rate: 4000, Achieved: 3000, Why: "p99 40ms > 10ms"})
	if got := res.Line(); got != "capacity: 2000 req/s at p99 <= 10ms" {
		t.Errorf("with a failing step: Line() = %q", got)
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	p := ProgressBar(&b, false, time.Hour)
	p(0, 100)
	p(50, 100) // within the interval: no line
	p(100, 100)
	p(100, 100) // after the end: nothing
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[==============================] 100% 100/100") || !strings.Contains(lines[1], "tokens/s") {
		t.Errorf("plain progress:\n%s", b.String())
	}
	b.Reset()
	p = ProgressBar(&b, true, time.Hour)
	p(25, 100)
	if !strings.HasPrefix(b.String(), "\r[=======                       ]  25% 25/100") || !strings.Contains(b.String(), "ETA") {
		t.Errorf("tty progress %q", b.String())
	}
}

func TestWarnings(t *testing.T) {
	r := &run{cfg: AttackConfig{MaxWorkers: 8}}
	for _, tc := range []struct {
		name      string
		rep       Report
		want      []string
		saturated bool
	}{
		{name: "fine", rep: Report{SentRate: 999, RequestedRate: 1000, CPU: CPU{Share: 0.2, Cores: 2}}},
		{name: "generator saturated", rep: Report{SentRate: 600, RequestedRate: 1000, CPU: CPU{Share: 0.95, Cores: 2}},
			want: []string{"generator used 95% of its 2 cores", "the generator ran out of CPU"}, saturated: true},
		{name: "server slow", rep: Report{SentRate: 600, RequestedRate: 1000, Workers: 8, CPU: CPU{Share: 0.3, Cores: 2}},
			want: []string{"all 8 workers were busy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := tc.rep
			got := strings.Join(r.warnings(&rep), "\n")
			if len(tc.want) == 0 && got != "" {
				t.Errorf("unexpected warnings %q", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("warnings %q lack %q", got, w)
				}
			}
			if rep.CPU.Saturated != tc.saturated {
				t.Errorf("saturated = %v", rep.CPU.Saturated)
			}
		})
	}
}
