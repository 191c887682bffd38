package loadgen_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/loadgen"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
)

const adminToken = "loadgen-test-admin-token-0123456789"

// startJWTGate runs a real jwtgate on 127.0.0.1:0.
func startJWTGate(t *testing.T, opts ...engine.Option) *server.Server {
	t.Helper()
	return servertest.Start(t, server.Config{Store: engine.NewMemoryStore(), AdminToken: adminToken, EngineOptions: opts})
}

func fixedKeyring() *loadgen.Keyring {
	r := &loadgen.Keyring{Project: "myapp"}
	r.Keys = append(r.Keys, loadgen.NewSigningKey(enginetest.Key("rsa2048-a")), loadgen.NewSigningKey(enginetest.Key("rsa2048-b")))
	ik := loadgen.NewSigningKey(enginetest.Key("rsa2048-c"))
	ik.Inactive = true
	r.Keys = append(r.Keys, ik)
	return r
}

// mintFor registers a keyring with srv's admin API and mints count
// targets of every class for its verify listener.
func mintFor(t *testing.T, srv *server.Server, count int) []loadgen.Target {
	t.Helper()
	ring := fixedKeyring()
	admin := &loadgen.Admin{URL: "http://" + srv.AdminAddr(), Token: adminToken}
	if err := loadgen.RegisterKeyring(context.Background(), admin, ring); err != nil {
		t.Fatal(err)
	}
	var mix loadgen.Mix
	for _, c := range loadgen.MintableClasses() {
		mix.Weights[c] = 1
	}
	mix.Weights[loadgen.Valid] = 4
	var buf bytes.Buffer
	if _, err := loadgen.Mint(context.Background(), &buf, loadgen.MintConfig{Keyring: ring, Count: count, Mix: mix,
		Unique: 10, URL: "http://" + srv.Addr() + "/v1/verify"}); err != nil {
		t.Fatal(err)
	}
	tg, err := loadgen.ReadTargets(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestAttackRealServerEveryVerdictChecked(t *testing.T) {
	srv := startJWTGate(t)
	targets := mintFor(t, srv, 400)
	var results bytes.Buffer
	var statuses int
	rep, err := loadgen.Attack(context.Background(), loadgen.AttackConfig{Targets: targets,
		Rate: loadgen.RatePerSecond(200), Duration: 2 * time.Second, Connections: 4,
		Results: &results, Status: func(loadgen.Status) { statuses++ }})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	_ = rep.WriteText(&text)
	t.Log("\n" + text.String())
	if !rep.OK() || rep.Mismatches != 0 || rep.Errors != 0 {
		t.Fatalf("mismatches against a correct server:\n%s", text.String())
	}
	if rep.Throughput > rep.SentRate || rep.Throughput <= 0 {
		t.Errorf("answered as expected %.2f req/s, sent %.2f req/s: the first can never exceed the second", rep.Throughput, rep.SentRate)
	}
	if rep.Requests < 300 || rep.Requests > 420 {
		t.Errorf("requests %d, want about 400", rep.Requests)
	}
	if len(rep.Classes) != len(loadgen.MintableClasses()) {
		t.Errorf("%d classes sent, want all %d", len(rep.Classes), len(loadgen.MintableClasses()))
	}
	if statuses == 0 {
		t.Error("no live status")
	}
	var plot bytes.Buffer
	if err := loadgen.WritePlot(&plot, &results, "test"); err != nil || !bytes.Contains(plot.Bytes(), []byte("<html")) {
		t.Errorf("plot: %v", err)
	}
}

func TestAttackCatchesMisconfiguredServer(t *testing.T) {
	// The server accepts lifetimes of 2h; the tokens were minted for the
	// default 600s, so every ttl_exceeded token now gets a 200.
	srv := startJWTGate(t, engine.WithMaxTTL(2*time.Hour))
	targets := mintFor(t, srv, 200)
	rep, err := loadgen.Attack(context.Background(), loadgen.AttackConfig{Targets: targets,
		Rate: loadgen.RatePerSecond(200), Duration: time.Second, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Mismatches == 0 {
		t.Fatalf("a misconfigured server was not caught: %+v", rep)
	}
	for _, c := range rep.Classes {
		if (c.Class == "ttl_exceeded") != (c.Mismatches > 0) {
			t.Errorf("class %s: %d mismatches of %d", c.Class, c.Mismatches, c.Sent)
		}
		if c.Class == "ttl_exceeded" && c.Mismatches != c.Sent {
			t.Errorf("ttl_exceeded: %d mismatches of %d sent", c.Mismatches, c.Sent)
		}
	}
	if len(rep.Samples) == 0 || rep.Samples[0].Expect != "ttl_exceeded" || rep.Samples[0].Got != "valid" || rep.Samples[0].Status != 200 {
		t.Errorf("samples: %+v", rep.Samples)
	}
}

func TestAttackRefusesRemoteTargets(t *testing.T) {
	tg, err := loadgen.ReadTargets(strings.NewReader(`{"method":"GET","url":"http://example.com/v1/verify","header":{"X-Loadgen-Expect":["valid"]}}`+"\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = loadgen.Attack(context.Background(), loadgen.AttackConfig{Targets: tg, Rate: loadgen.RatePerSecond(1), Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "not a loopback") {
		t.Fatalf("err = %v", err)
	}
}
