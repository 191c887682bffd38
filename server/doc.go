// Package server serves the jwtgate engine over valyala/fasthttp, as docs/API.md
// describes: a verify listener (/v1/verify, per-project JWKS, /healthz,
// /readyz) and an admin listener (key registration and management behind a
// bearer admin token, and /metrics), each on its own address.
//
//	srv, err := server.New(server.Config{Store: store, DataDir: dir})
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Shutdown(ctx)
//
// The verify handler is the hot path: it works on []byte, reuses pooled
// engine.Claims, answers from prebuilt byte slices, counts metrics in striped
// padded counters, and allocates nothing on its 200 and 401 paths (guarded by
// AllocsPerRun tests). The admin handler is not hot and favours clarity.
//
// With Config.GRPCAddr it also serves Envoy's external authorization API
// (envoy.service.auth.v3.Authorization/Check, over google.golang.org/grpc
// with the go-control-plane types) and the gRPC health service, giving the
// same verdicts as /v1/verify; see grpc.go.
//
// The server imports the engine, fasthttp, gRPC and the standard library;
// the key store is opened by the caller (cmd/jwtgate) and passed in.
package server
