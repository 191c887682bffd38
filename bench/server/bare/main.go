// Command bare is the benchmark baseline: a fasthttp server whose handler
// answers 200 with a short body, configured like jwtgate's verify listener.
package main

import (
	"flag"
	"log"

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
		Name:                 "jwtgate",
		NoDefaultContentType: true,
		ReadBufferSize:       16 << 10,
	}
	log.Fatal(s.ListenAndServe(*addr))
}
