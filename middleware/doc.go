// Package middleware verifies bearer tokens inside a Go service, with no
// network hop: net/http and fasthttp middleware over an *engine.Verifier.
//
//	v, _ := engine.New(store)
//	mw := middleware.New(v)
//	http.Handle("/api/", mw.Handler(api))          // net/http
//	fasthttp.ListenAndServe(addr, mw.FastHTTP(h))  // fasthttp
//
// A request with a valid token reaches the next handler with the verified
// claims in its context (Claims) or user values (FastHTTPClaims). Any other
// request is answered exactly as the jwtgate verify listener answers it: a
// 401 with the JSON body {"valid":false,"error":"<code>","message":"..."}
// and WWW-Authenticate, or a 503 when the key store cannot be reached; the
// next handler is not called. WithErrorHandler and WithFastHTTPErrorHandler
// replace that answer (WriteError and WriteFastHTTPError write the default
// one).
//
// A fasthttp server must read headers as large as the verifier's max token
// size plus the rest of the request (fasthttp.Server.ReadBufferSize, 4 KiB
// by default; the verify listener uses the max token size + 8 KiB), or it
// answers 431 before the middleware runs.
//
// The verifier follows the key store it was built on. On the PostgreSQL
// store (store/pgstore) that jwtgate nodes share, engine.New subscribes it
// to the store's change feed: keys added, deactivated or deleted through any
// node are in force here too, as on the nodes (see Example_postgres).
package middleware
