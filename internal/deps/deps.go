//go:build tools

// Package deps pins the project's dependencies in go.mod while the packages
// that use them are written, so that parallel work never edits go.mod at
// the same time. It is never built.
package deps

import (
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/hashicorp/golang-lru/v2"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/lestrrat-go/jwx/v3/jwt"
	_ "github.com/spf13/pflag"
	_ "github.com/tsenart/vegeta/v12/lib"
	_ "github.com/valyala/fasthttp"
	_ "github.com/valyala/fasthttp/fasthttputil"
	_ "go.etcd.io/bbolt"
)
