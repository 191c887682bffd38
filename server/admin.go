package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
	"github.com/valyala/fasthttp"
)

// Admin route templates (the metric's route label).
const (
	routeKeys    = "/v1/projects/{project}/keys"
	routeKey     = "/v1/projects/{project}/keys/{kid}"
	routeKeyByQ  = "/v1/projects/{project}/key"
	routeMetrics = "/metrics"
	routeStatus  = "/v1/status"
	routeOther   = "other"
)

var (
	allowKeys    = []byte("GET, POST")
	allowKey     = []byte("GET, PATCH, DELETE")
	allowMetrics = []byte("GET, HEAD")
	wwwAdmin     = []byte(`Bearer realm="jwtgate-admin"`)
)

// adminTimeout bounds one admin operation on the store.
const adminTimeout = 10 * time.Second

// AdminHandler returns the admin listener's handler: the key API under
// /v1/projects/{project}/keys (bearer admin token) and /metrics.
func (s *Server) AdminHandler() fasthttp.RequestHandler { return s.handleAdmin }

func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx) {
	method := string(ctx.Method())
	route := routeOther
	defer func() {
		s.admin.inc(method, route, ctx.Response.StatusCode())
	}()
	// Route on the path as sent, before anything else (the admin token
	// included): see route.go.
	raw := rawPath(ctx)
	if p := checkPath(raw); p != pathOK {
		refusePath(ctx, p)
		return
	}
	path := string(raw)
	switch path {
	case "/metrics":
		route = routeMetrics
		if !ctx.IsGet() && !ctx.IsHead() {
			methodNotAllowed(ctx, allowMetrics)
			return
		}
		s.serveMetrics(ctx)
		return
	case "/healthz":
		if getOrHead(ctx) {
			ctx.Response.Header.SetContentTypeBytes(ctText)
			ctx.SetBody(bodyOK)
		}
		return
	}
	if !strings.HasPrefix(path, "/v1/") {
		notFound(ctx)
		return
	}
	if path == routeStatus {
		route = routeStatus
	}
	rest, isProjects := strings.CutPrefix(path, "/v1/projects/")
	parts := strings.Split(rest, "/")
	tokenID := ""
	if isProjects && len(parts) == 2 && parts[1] == "keys" {
		route = routeKeys
	} else if isProjects && len(parts) == 3 && parts[1] == "keys" {
		route = routeKey
	} else if isProjects && len(parts) == 2 && parts[1] == "key" {
		route = routeKeyByQ
	} else if isProjects && len(parts) == 2 && parts[1] == "keys:generate" {
		route = routeGenerate
	} else if path == routeTokens {
		route = routeTokens
	} else if id, ok := strings.CutPrefix(path, routeTokens+"/"); ok && id != "" && !strings.Contains(id, "/") {
		route, tokenID = routeToken, id
	} else if path == routeAudit {
		route = routeAudit
	} else if isProjects && len(parts) == 2 && parts[1] == "jwks-source" {
		route = routeJWKSSource
	}
	p, ok := s.authenticate(ctx, route)
	if !ok {
		return
	}
	switch route {
	case routeStatus:
		if getOrHead(ctx) {
			s.status(ctx)
		}
	case routeKeys:
		project := parts[0]
		switch method {
		case fasthttp.MethodGet:
			if allowProject(ctx, p, project, false) && s.checkProject(ctx, project) {
				s.listKeys(ctx, project)
			}
		case fasthttp.MethodPost:
			if allowProject(ctx, p, project, true) && s.checkProject(ctx, project) {
				s.addKey(ctx, p, project)
			}
		default:
			methodNotAllowed(ctx, allowKeys)
		}
	case routeGenerate:
		if method != fasthttp.MethodPost {
			methodNotAllowed(ctx, allowGenerate)
		} else if allowProject(ctx, p, parts[0], true) && s.checkProject(ctx, parts[0]) {
			s.generateKey(ctx, p, parts[0])
		}
	case routeKey, routeKeyByQ:
		project := parts[0]
		switch method {
		case fasthttp.MethodGet, fasthttp.MethodPatch, fasthttp.MethodDelete:
		default:
			methodNotAllowed(ctx, allowKey)
			return
		}
		if !allowProject(ctx, p, project, method != fasthttp.MethodGet) || !s.checkProject(ctx, project) {
			return
		}
		var kid string
		if route == routeKey {
			kid = parts[2]
		} else if kid = queryKID(ctx); kid == "" {
			return
		}
		if !engine.StoredKID(kid) {
			adminError(ctx, fasthttp.StatusNotFound, "not_found", "no key with this kid in this project")
			return
		}
		switch method {
		case fasthttp.MethodGet:
			s.getKey(ctx, project, kid)
		case fasthttp.MethodPatch:
			s.updateKey(ctx, p, project, kid)
		case fasthttp.MethodDelete:
			s.deleteKey(ctx, p, project, kid)
		}
	case routeTokens, routeToken:
		allow := allowTokens
		if route == routeToken {
			allow = allowToken
		}
		if (route == routeTokens && !ctx.IsGet() && !ctx.IsPost()) || (route == routeToken && !ctx.IsDelete()) {
			methodNotAllowed(ctx, allow)
			return
		}
		if requireRoot(ctx, p) {
			s.handleTokens(ctx, p, tokenID)
		}
	case routeJWKSSource:
		s.handleJWKSSource(ctx, p, parts[0])
	case routeAudit:
		if !ctx.IsGet() {
			methodNotAllowed(ctx, allowAudit)
			return
		}
		if requireRoot(ctx, p) {
			s.listAudit(ctx)
		}
	default:
		notFound(ctx)
	}
}

// status answers GET /v1/status: the readiness the public /readyz
// reports, with its cause (the store's health detail). 200 when /readyz is,
// else 503.
func (s *Server) status(ctx *fasthttp.RequestCtx) {
	r := s.readiness()
	code := fasthttp.StatusOK
	if !r.Ready {
		code = fasthttp.StatusServiceUnavailable
	}
	writeJSON(ctx, code, r)
}

// queryKID returns the kid of /v1/projects/{project}/key?kid=<kid>, the
// form that addresses any stored key, including one registered as "." or
// ".." before those were refused (no path can carry them: such a segment
// is refused). It answers 400 and returns "" unless kid is given exactly
// once and non-empty.
func queryKID(ctx *fasthttp.RequestCtx) string {
	var kid []byte
	n := 0
	for k, v := range ctx.QueryArgs().All() {
		if string(k) == "kid" {
			n++
			kid = v
		}
	}
	if n != 1 || len(kid) == 0 {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_request", "give the kid exactly once: /v1/projects/{project}/key?kid=<kid>")
		return ""
	}
	return string(kid)
}

func (s *Server) checkProject(ctx *fasthttp.RequestCtx, project string) bool {
	if engine.ValidProject(project) {
		return true
	}
	adminError(ctx, fasthttp.StatusBadRequest, "invalid_project", "project must match ^[a-z0-9][a-z0-9_-]{0,62}$")
	return false
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func adminError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	b, _ := json.Marshal(errorBody{Error: code, Message: msg})
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.SetBody(b)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		adminError(ctx, fasthttp.StatusInternalServerError, "internal", "could not encode the response")
		return
	}
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.SetBody(append(b, '\n'))
}

// keyObject is the docs/API.md key object.
type keyObject struct {
	KID           string  `json:"kid"`
	Project       string  `json:"project"`
	Label         string  `json:"label"`
	Status        string  `json:"status"`
	Algorithm     string  `json:"algorithm"`
	Bits          int     `json:"bits"`
	Thumbprint    string  `json:"thumbprint"`
	CreatedAt     string  `json:"created_at"`
	UpdatedAt     string  `json:"updated_at"`
	LastUsedAt    *string `json:"last_used_at"`
	VerifiedCount uint64  `json:"verified_count"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func toKeyObject(k *engine.Key) keyObject {
	o := keyObject{
		KID: k.KID, Project: k.Project, Label: k.Label, Status: string(k.Status),
		Algorithm: "RS256", Bits: k.Bits(), Thumbprint: k.Thumbprint(),
		CreatedAt: rfc3339(k.CreatedAt), UpdatedAt: rfc3339(k.UpdatedAt),
		VerifiedCount: k.VerifiedCount,
	}
	if !k.LastUsedAt.IsZero() {
		t := rfc3339(k.LastUsedAt)
		o.LastUsedAt = &t
	}
	return o
}

// storeError answers an error of the engine's key management.
func (s *Server) storeError(ctx *fasthttp.RequestCtx, op, project, kid string, err error) {
	var ke *engine.KeyError
	switch {
	case errors.As(err, &ke):
		code := "invalid_key"
		switch {
		case errors.Is(err, engine.ErrPrivateKey):
			code = "private_key"
		case errors.Is(err, engine.ErrInvalidLabel):
			code = "invalid_label"
		}
		adminError(ctx, fasthttp.StatusBadRequest, code, ke.Error())
	case errors.Is(err, engine.ErrKIDTaken):
		adminError(ctx, fasthttp.StatusConflict, "kid_taken", "a key with this kid is already registered")
	case errors.Is(err, engine.ErrKeyNotFound):
		adminError(ctx, fasthttp.StatusNotFound, "not_found", "no key with this kid in this project")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, engine.ErrStoreClosed):
		s.log.Error("admin: key store unavailable", "op", op, "project", project, "kid", kid, "err", err.Error())
		adminError(ctx, fasthttp.StatusServiceUnavailable, "unavailable", "the key store is unavailable; try again")
	default:
		s.log.Error("admin: key store error", "op", op, "project", project, "kid", kid, "err", err.Error())
		adminError(ctx, fasthttp.StatusInternalServerError, "internal", "the key store failed; see the server log")
	}
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), adminTimeout)
}

func (s *Server) listKeys(ctx *fasthttp.RequestCtx, project string) {
	c, cancel := opContext()
	defer cancel()
	keys, err := s.v.ListKeys(c, project)
	if err != nil {
		s.storeError(ctx, "list", project, "", err)
		return
	}
	out := struct {
		Keys []keyObject `json:"keys"`
	}{Keys: make([]keyObject, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, toKeyObject(k))
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

func (s *Server) getKey(ctx *fasthttp.RequestCtx, project, kid string) {
	c, cancel := opContext()
	defer cancel()
	k, err := s.v.GetKey(c, project, kid)
	if err != nil {
		s.storeError(ctx, "get", project, kid, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, toKeyObject(k))
}

// readJSONBody checks the body's size and that it is one strict JSON object
// (no duplicate names), then decodes it into v refusing unknown fields.
func readJSONBody(ctx *fasthttp.RequestCtx, v any) bool {
	body := ctx.PostBody()
	if len(body) > MaxAdminBodyBytes {
		adminError(ctx, fasthttp.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than 64 KiB")
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_json", "the request body must be a JSON object")
		return false
	}
	if err := engine.ValidateJSONObject(body); err != nil {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_json", "the request body is not one strict JSON object: "+err.Error())
		return false
	}
	if msg := checkMemberNames(body, v); msg != "" {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_json", "the request body does not match the expected fields: "+msg)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_json", "the request body does not match the expected fields: "+jsonErrorText(err))
		return false
	}
	return true
}

// checkMemberNames checks the top-level member names of body (one valid
// JSON object, without duplicates) against the json names of the fields
// of *v, exactly. encoding/json matches names case-insensitively and lets
// the last of two case variants win, so {"status":"inactive",
// "STATUS":"active"} would be read as active: a name that equals a field's
// only case-insensitively is refused here, before decoding. It returns ""
// when every name is exact or unknown (unknown names are left to
// DisallowUnknownFields).
func checkMemberNames(body []byte, v any) string {
	fields := jsonFieldNames(reflect.TypeOf(v))
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "malformed JSON"
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "malformed JSON"
		}
		name, _ := t.(string)
		if !slices.Contains(fields, name) {
			for _, f := range fields {
				if strings.EqualFold(f, name) {
					return "a member name differs from \"" + f + "\" only in case; names are case-sensitive"
				}
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "malformed JSON"
		}
	}
	return ""
}

// fieldNames caches jsonFieldNames per request type.
var fieldNames sync.Map // reflect.Type -> []string

// jsonFieldNames returns the json member names of the struct t points to.
func jsonFieldNames(t reflect.Type) []string {
	if names, ok := fieldNames.Load(t); ok {
		return names.([]string)
	}
	st := t
	for st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	var names []string
	if st.Kind() == reflect.Struct {
		for f := range st.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch name {
			case "-":
				continue
			case "":
				name = f.Name
			}
			names = append(names, name)
		}
	}
	fieldNames.Store(t, names)
	return names
}

// jsonErrorText describes a decoding error without quoting the input.
func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "member " + te.Field + " has the wrong type"
	}
	msg := err.Error()
	if msg == `json: unknown field "keys"` {
		return `unknown field "keys": this looks like a key set (JWKS); send one key, as {"jwk": <one element of "keys">}`
	}
	if strings.HasPrefix(msg, "json: unknown field") {
		return strings.TrimPrefix(msg, "json: ")
	}
	return "malformed JSON"
}

type addKeyRequest struct {
	PublicKey *string         `json:"public_key"`
	JWK       json.RawMessage `json:"jwk"`
	Label     string          `json:"label"`
	KID       *string         `json:"kid"` // given: must match the pattern ("" included)
}

func (s *Server) addKey(ctx *fasthttp.RequestCtx, p principal, project string) {
	var req addKeyRequest
	if !readJSONBody(ctx, &req) {
		return
	}
	hasJWK := len(req.JWK) > 0 && string(req.JWK) != "null"
	if (req.PublicKey != nil) == hasJWK {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_request", `send exactly one of "public_key" (PEM) or "jwk"`)
		return
	}
	if req.KID != nil && !engine.ValidKID(*req.KID) {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_kid", `kid must match ^[A-Za-z0-9._-]{1,128}$ and not be "." or ".."`)
		return
	}
	policy := s.v.KeyPolicy()
	k := &engine.Key{Project: project, Label: req.Label}
	if req.KID != nil {
		k.KID = *req.KID
	}
	var err error
	if req.PublicKey != nil {
		k.Public, err = engine.ParsePublicKeyPEM([]byte(*req.PublicKey), policy)
	} else {
		var jwkKID string
		k.Public, jwkKID, err = engine.ParseJWK(req.JWK, policy)
		if err == nil && jwkKID != "" {
			if k.KID != "" && k.KID != jwkKID {
				adminError(ctx, fasthttp.StatusBadRequest, "invalid_request", `"kid" and the jwk's kid differ`)
				return
			}
			k.KID = jwkKID
		}
	}
	if err != nil {
		s.storeError(ctx, "add", project, "", err)
		return
	}
	if k.KID != "" && !engine.ValidKID(k.KID) {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_kid", `kid must match ^[A-Za-z0-9._-]{1,128}$ and not be "." or ".."`)
		return
	}
	nk := s.registerKey(ctx, p, admin.ActionKeyCreated, "add", k)
	if nk == nil {
		return
	}
	s.log.Info("key registered", "project", project, "kid", nk.KID, "bits", nk.Bits(), "thumbprint", nk.Thumbprint())
	writeJSON(ctx, fasthttp.StatusCreated, toKeyObject(nk))
}

// registerKey adds k (of project k.Project) for p, with the audit event
// action; op names the operation if the store refuses it. On error it has
// answered the request and returns nil.
func (s *Server) registerKey(ctx *fasthttp.RequestCtx, p principal, action, op string, k *engine.Key) *engine.Key {
	project := k.Project
	c, cancel := opContext()
	defer cancel()
	ev := s.newEvent(p, admin.Event{Action: action, Project: project, KID: k.KID})
	nk, err := s.v.AddKey(admin.WithEvent(c, ev), k)
	if err != nil {
		s.storeError(ctx, op, project, k.KID, err)
		return nil
	}
	ev.KID, ev.After = nk.KID, admin.KeySnapshot(nk)
	s.finishAudit(ev)
	return nk
}

type updateKeyRequest struct {
	Label  *string `json:"label"`
	Status *string `json:"status"`
}

func (s *Server) updateKey(ctx *fasthttp.RequestCtx, p principal, project, kid string) {
	force, ok := parseForce(ctx)
	if !ok {
		return
	}
	var req updateKeyRequest
	if !readJSONBody(ctx, &req) {
		return
	}
	var u engine.KeyUpdate
	u.Label = req.Label
	if req.Status != nil {
		st := engine.KeyStatus(*req.Status)
		if !st.Valid() {
			adminError(ctx, fasthttp.StatusBadRequest, "invalid_status", `status must be "active" or "inactive"`)
			return
		}
		u.Status = &st
	}
	c, cancel := opContext()
	defer cancel()
	// This node's usage is flushed first, so that none is in flight
	// between its counters and the store while the guardrail looks.
	if err := s.flushLocked(c); err != nil {
		s.log.Warn("usage flush before a key change failed; the counts stay pending", "err", err.Error())
	}
	before, err := s.v.GetKey(c, project, kid)
	if err != nil {
		s.storeError(ctx, "update", project, kid, err)
		return
	}
	forced := false
	if u.Status != nil && *u.Status == engine.StatusInactive && before.Status == engine.StatusActive {
		var blocked bool
		if blocked, forced = s.checkInUse(ctx, before, "deactivate", force); blocked {
			return
		}
	}
	ev := s.newEvent(p, admin.Event{Action: admin.ActionKeyUpdated, Project: project, KID: kid, Forced: forced})
	k, err := s.v.UpdateKey(admin.WithEvent(c, ev), project, kid, u)
	if err != nil {
		s.storeError(ctx, "update", project, kid, err)
		return
	}
	if !ev.Recorded {
		ev.Before, ev.After = admin.KeySnapshot(before), admin.KeySnapshot(k)
	}
	s.finishAudit(ev)
	attrs := []any{"project", project, "kid", kid}
	if u.Status != nil {
		attrs = append(attrs, "status", string(*u.Status))
	}
	if u.Label != nil {
		attrs = append(attrs, "label_changed", true)
	}
	s.log.Info("key updated", attrs...)
	writeJSON(ctx, fasthttp.StatusOK, toKeyObject(k))
}

func (s *Server) deleteKey(ctx *fasthttp.RequestCtx, p principal, project, kid string) {
	force, ok := parseForce(ctx)
	if !ok {
		return
	}
	c, cancel := opContext()
	defer cancel()
	// This node's usage is flushed first, so that none is in flight
	// between its counters and the store while the guardrail looks.
	if err := s.flushLocked(c); err != nil {
		s.log.Warn("usage flush before a key change failed; the counts stay pending", "err", err.Error())
	}
	before, err := s.v.GetKey(c, project, kid)
	if err != nil {
		s.storeError(ctx, "delete", project, kid, err)
		return
	}
	// An inactive key verifies nothing: deleting it cannot break traffic
	// (deactivating it was the guarded step).
	forced := false
	if before.Status == engine.StatusActive {
		var blocked bool
		if blocked, forced = s.checkInUse(ctx, before, "delete", force); blocked {
			return
		}
	}
	ev := s.newEvent(p, admin.Event{Action: admin.ActionKeyDeleted, Project: project, KID: kid, Forced: forced})
	if err := s.v.DeleteKey(admin.WithEvent(c, ev), project, kid); err != nil {
		s.storeError(ctx, "delete", project, kid, err)
		return
	}
	if !ev.Recorded {
		ev.Before = admin.KeySnapshot(before)
	}
	s.finishAudit(ev)
	s.log.Info("key deleted", "project", project, "kid", kid)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
