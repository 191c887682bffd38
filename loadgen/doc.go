// Package loadgen is jwtgate's load generator: it mints batches of tokens in
// a chosen mix of verdicts, drives a running jwtgate with them, checks every
// response against the verdict the token was minted for, and searches for the
// highest rate that holds a latency SLO.
//
// It is built on Vegeta's library (github.com/tsenart/vegeta/v12/lib): the
// target files are Vegeta JSON targets (one per line, `vegeta attack
// -format=json` reads them), pacing uses Vegeta's Pacer (constant or linear),
// results are vegeta.Result values encoded in Vegeta's binary format (so
// `vegeta report` and `vegeta plot` read them), metrics are vegeta.Metrics and
// the HTML latency plot is Vegeta's lib/plot. The HTTP client is fasthttp
// with prebuilt requests, because the generator's own CPU is the limit on a
// small machine (Vegeta's net/http client costs several times more per
// request).
//
// Typical use:
//
//	ring, _ := loadgen.GenerateKeyring("myapp", 4, true)
//	_ = loadgen.RegisterKeyring(ctx, admin, ring)
//	st, _ := loadgen.Mint(ctx, file, loadgen.MintConfig{Keyring: ring, Count: 100000, Mix: mix, URL: url})
//	rep, _ := loadgen.Attack(ctx, loadgen.AttackConfig{Targets: targets, Rate: rate, Duration: 10 * time.Second})
//	rep.WriteText(os.Stdout)
//
// Every token carries its expected verdict in the X-Loadgen-Expect header
// ("valid" or an docs/API.md error code), which jwtgate ignores.
//
// For safety the generator only sends to loopback addresses (127.0.0.0/8,
// ::1, localhost) unless AllowRemote is set, and every run is bounded in
// count and duration.
package loadgen
