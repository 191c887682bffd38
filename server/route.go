package server

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// Both listeners route on the request path exactly as sent. fasthttp's
// ctx.Path() is a cleaned copy (dot segments resolved, percent-escapes
// decoded, slashes merged): routing on it let
// DELETE /v1/projects/a/../b/keys/k act on project b, past any proxy that
// authorizes by path prefix. So no route is ever matched on a cleaned
// path: a path that cleaning would change, or that needs decoding, is
// refused with 400 invalid_request instead.

// rawPath returns the request path as sent, without the query (valid until
// the handler returns).
func rawPath(ctx *fasthttp.RequestCtx) []byte { return ctx.Request.URI().PathOriginal() }

// Why a raw path is refused. Every jwtgate route is made of non-empty
// segments of [A-Za-z0-9._-] (project and kid patterns included), so none
// of these refuses a real route.
const (
	pathOK = iota
	pathDotSegment
	pathEmptySegment
	pathEscaped
	pathBackslash
	pathNotAbsolute
	numPathProblems
)

var pathProblemText = [numPathProblems]string{
	pathDotSegment:   `the path has a "." or ".." segment; send the path itself, not one to be resolved`,
	pathEmptySegment: `the path has an empty segment ("//" or a trailing "/")`,
	pathEscaped:      "the path has a percent-escape; jwtgate routes never need one",
	pathBackslash:    `the path has a "\"`,
	pathNotAbsolute:  `the path must start with "/"`,
}

// invalidPathBody holds the prebuilt 400 bodies, one per problem.
var invalidPathBody = func() (b [numPathProblems][]byte) {
	for i := pathOK + 1; i < numPathProblems; i++ {
		b[i] = []byte(`{"error":"invalid_request","message":` + strconv.Quote(pathProblemText[i]) + `}`)
	}
	return b
}()

// checkPath reports why p is not fit to route (pathOK when it is): a "."
// or ".." segment, an empty segment (so "//" and a trailing "/"), any
// percent-escape (an encoded "/", "\" or "." would smuggle a separator or a
// dot segment; an encoded letter would be a second spelling of a route), or
// a backslash. "/" alone is fine (it is no route: 404).
func checkPath(p []byte) int {
	if len(p) == 0 || p[0] != '/' {
		return pathNotAbsolute
	}
	if len(p) == 1 {
		return pathOK
	}
	start := 1 // first byte of the current segment
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			switch p[i] {
			case '%':
				return pathEscaped
			case '\\':
				return pathBackslash
			case '/':
			default:
				continue
			}
		}
		switch seg := p[start:i]; {
		case len(seg) == 0:
			return pathEmptySegment
		case len(seg) == 1 && seg[0] == '.', len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			return pathDotSegment
		}
		start = i + 1
	}
	return pathOK
}

// refusePath answers 400 invalid_request for a path checkPath refused.
func refusePath(ctx *fasthttp.RequestCtx, problem int) {
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.SetBody(invalidPathBody[problem])
}

const verifyPath = "/v1/verify"

// isVerifyPath reports whether p is /v1/verify or below /v1/verify/. What
// follows the prefix is the protected request's own path (Envoy's HTTP
// ext_authz appends it to path_prefix): it is neither checked nor used,
// since the verdict depends only on the token and the required project.
func isVerifyPath(p []byte) bool {
	if len(p) < len(verifyPath) || string(p[:len(verifyPath)]) != verifyPath {
		return false
	}
	return len(p) == len(verifyPath) || p[len(verifyPath)] == '/'
}
