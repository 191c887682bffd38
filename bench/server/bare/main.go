// Command bare is the benchmark baseline: a fasthttp server whose handler
// answers 200 with a short body, configured like jwtgate's verify listener
// with its default flags (server.New): the same timeouts, buffers and
// limits, so that the comparison prices jwtgate's handler and not the
// protections both servers have. It uses fasthttp's own listener and
// connections, without jwtgate's connection wrapper.
package main

import (
	"flag"
	"log"

	"github.com/jwtgate/jwtgate/server"
	"github.com/valyala/fasthttp"
)

var body = []byte(`{"valid":true}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	flag.Parse()
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.SetContentType("application/json")
			ctx.SetBody(body)
		},
		Name:                  "jwtgate",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadBufferSize:        server.DefaultMaxHeaderBytes,
		WriteBufferSize:       4096,
		ReadTimeout:           server.DefaultReadTimeout,
		WriteTimeout:          server.DefaultWriteTimeout,
		IdleTimeout:           server.DefaultIdleTimeout,
		Concurrency:           server.DefaultConcurrency,
		TCPKeepalive:          true,
	}
	log.Fatal(s.ListenAndServe(*addr))
}
