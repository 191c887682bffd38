package server

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/valyala/fasthttp"
)

const routeJWKSSource = "/v1/projects/{project}/jwks-source"

var allowJWKSSource = []byte("GET, PUT, DELETE")

// Bounds of a JWKS source's durations.
const (
	DefaultJWKSRefresh = 5 * time.Minute
	DefaultJWKSGrace   = 24 * time.Hour
	minJWKSRefresh     = time.Second
	maxJWKSRefresh     = 24 * time.Hour
	maxJWKSGrace       = 30 * 24 * time.Hour
)

type jwksSourceRequest struct {
	URL     *string `json:"url"`
	Refresh *string `json:"refresh"`
	Grace   *string `json:"grace"`
}

// jwksSourceObject is the docs/API.md JWKS source object.
type jwksSourceObject struct {
	Project       string            `json:"project"`
	URL           string            `json:"url"`
	Refresh       string            `json:"refresh"`
	Grace         string            `json:"grace"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	LastAttemptAt *string           `json:"last_attempt_at"`
	LastFetchAt   *string           `json:"last_fetch_at"`
	NextFetchAt   *string           `json:"next_fetch_at"`
	LastError     *string           `json:"last_error"`
	ImportedKIDs  []string          `json:"imported_kids"`
	KeyErrors     map[string]string `json:"key_errors"`
	Retiring      map[string]string `json:"retiring"`
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

func toSourceObject(src *admin.JWKSSource) jwksSourceObject {
	o := jwksSourceObject{
		Project: src.Project, URL: src.URL, Refresh: src.Refresh.String(), Grace: src.Grace.String(),
		CreatedAt: rfc3339(src.CreatedAt), UpdatedAt: rfc3339(src.UpdatedAt),
		LastAttemptAt: optTime(src.LastAttempt), LastFetchAt: optTime(src.LastFetch), NextFetchAt: optTime(src.NextFetch),
		ImportedKIDs: slices.Clone(src.Imported), KeyErrors: map[string]string{}, Retiring: map[string]string{},
	}
	if o.ImportedKIDs == nil {
		o.ImportedKIDs = []string{}
	}
	if src.LastError != "" {
		e := src.LastError
		o.LastError = &e
	}
	for k, v := range src.KeyErrors {
		o.KeyErrors[k] = v
	}
	for k, v := range src.Missing {
		o.Retiring[k] = rfc3339(v)
	}
	return o
}

// sourceSnapshot is a JWKS source's settings as the audit trail records
// them (nil: did not exist).
func sourceSnapshot(src *admin.JWKSSource) json.RawMessage {
	if src == nil {
		return nil
	}
	b, _ := json.Marshal(struct {
		Project string `json:"project"`
		URL     string `json:"url"`
		Refresh string `json:"refresh"`
		Grace   string `json:"grace"`
	}{src.Project, src.URL, src.Refresh.String(), src.Grace.String()})
	return b
}

func (s *Server) handleJWKSSource(ctx *fasthttp.RequestCtx, p principal, project string) {
	method := string(ctx.Method())
	switch method {
	case fasthttp.MethodGet, fasthttp.MethodPut, fasthttp.MethodDelete:
	default:
		methodNotAllowed(ctx, allowJWKSSource)
		return
	}
	if !allowProject(ctx, p, project, method != fasthttp.MethodGet) || !s.checkProject(ctx, project) {
		return
	}
	if s.jwksImp == nil {
		adminError(ctx, fasthttp.StatusNotImplemented, "not_supported", "this key store keeps no JWKS sources")
		return
	}
	c, cancel := opContext()
	defer cancel()
	switch method {
	case fasthttp.MethodGet:
		src, err := s.jwksImp.store.GetJWKSSource(c, project)
		if err != nil {
			s.sourceError(ctx, project, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, toSourceObject(src))
	case fasthttp.MethodDelete:
		before, _ := s.jwksImp.store.GetJWKSSource(c, project)
		if err := s.jwksImp.store.DeleteJWKSSource(c, project); err != nil {
			s.sourceError(ctx, project, err)
			return
		}
		s.finishAudit(s.newEvent(p, admin.Event{Action: admin.ActionJWKSSourceDeleted, Project: project, Before: sourceSnapshot(before)}))
		s.log.Info("jwks source removed", "project", project)
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case fasthttp.MethodPut:
		s.putJWKSSource(ctx, c, p, project)
	}
}

func (s *Server) sourceError(ctx *fasthttp.RequestCtx, project string, err error) {
	if errors.Is(err, admin.ErrSourceNotFound) {
		adminError(ctx, fasthttp.StatusNotFound, "not_found", "this project has no JWKS source")
		return
	}
	s.storeError(ctx, "jwks-source", project, "", err)
}

func parseBoundedDuration(ctx *fasthttp.RequestCtx, name string, v *string, def, lo, hi time.Duration) (time.Duration, bool) {
	if v == nil {
		return def, true
	}
	d, err := time.ParseDuration(*v)
	if err != nil || d < lo || d > hi {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_request",
			name+" must be a duration such as \"5m\" or \"24h\" between "+lo.String()+" and "+hi.String())
		return 0, false
	}
	return d, true
}

func (s *Server) putJWKSSource(ctx *fasthttp.RequestCtx, c context.Context, p principal, project string) {
	var req jwksSourceRequest
	if !readJSONBody(ctx, &req) {
		return
	}
	if req.URL == nil {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_request", `"url" is required: the https:// URL of the project's JWK Set`)
		return
	}
	if msg := checkJWKSURL(*req.URL, s.jwksImp.cfg.AllowPrivate); msg != "" {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_url", msg)
		return
	}
	refresh, ok := parseBoundedDuration(ctx, "refresh", req.Refresh, DefaultJWKSRefresh, minJWKSRefresh, maxJWKSRefresh)
	if !ok {
		return
	}
	grace, ok := parseBoundedDuration(ctx, "grace", req.Grace, DefaultJWKSGrace, 0, maxJWKSGrace)
	if !ok {
		return
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	created := false
	var before, after json.RawMessage
	err := s.jwksImp.store.UpdateJWKSSource(c, project, func(cur *admin.JWKSSource) (*admin.JWKSSource, error) {
		created = cur == nil
		before = sourceSnapshot(cur)
		if cur == nil {
			cur = &admin.JWKSSource{Project: project, CreatedAt: now}
		}
		if cur.URL != *req.URL {
			cur.ETag = ""
		}
		cur.URL, cur.Refresh, cur.Grace, cur.UpdatedAt = *req.URL, refresh, grace, now
		cur.NextFetch = time.Time{} // fetch now
		after = sourceSnapshot(cur)
		return cur, nil
	})
	if err != nil {
		s.sourceError(ctx, project, err)
		return
	}
	s.finishAudit(s.newEvent(p, admin.Event{Action: admin.ActionJWKSSourceSet, Project: project, Before: before, After: after}))
	s.log.Info("jwks source set", "project", project, "url", *req.URL, "refresh", refresh.String(), "grace", grace.String())
	// The source is due now (NextFetch zero): fetch it here, so that the
	// answer shows the outcome, unless this node's loop or another node
	// got to it first (then the answer shows what that fetch found, or the
	// state so far while another node holds it).
	if _, err := s.jwksImp.sync(project, false); err != nil {
		s.log.Warn("jwks import: sync failed", "project", project, "err", err.Error())
	}
	src, err := s.jwksImp.store.GetJWKSSource(c, project)
	if err != nil {
		s.sourceError(ctx, project, err)
		return
	}
	code := fasthttp.StatusOK
	if created {
		code = fasthttp.StatusCreated
	}
	writeJSON(ctx, code, toSourceObject(src))
}
