package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/internal/verdict"
	"github.com/valyala/fasthttp"
)

// Admin route templates of the key lifecycle (the metric's route label).
const (
	routeTokens = "/v1/tokens"
	routeToken  = "/v1/tokens/{id}"
	routeAudit  = "/v1/audit"
)

var (
	allowTokens = []byte("GET, POST")
	allowToken  = []byte("DELETE")
	allowAudit  = []byte("GET")
)

// principal is the credential an admin request was authenticated with: the
// root admin token (token nil) or a scoped admin token.
type principal struct {
	token *admin.Token
}

func (p principal) actor() (typ, id string) {
	if p.token == nil {
		return admin.ActorRoot, ""
	}
	return admin.ActorToken, p.token.ID
}

// authenticate checks for exactly one Authorization header carrying the
// root admin token or a valid scoped admin token. The root token is
// compared as SHA-256 digests in constant time (so its length does not leak
// either); a scoped token is looked up by the SHA-256 of the presented
// secret and the stored hash compared again in constant time. Failures are
// answered 401 and logged (rate-bounded, never the presented value); a store
// that cannot be asked gives 503.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, route string) (principal, bool) {
	all := ctx.Request.Header.PeekAll(hdrAuth)
	var reason, tokenID string
	switch {
	case len(all) == 0:
		reason = "no Authorization header"
	case len(all) > 1:
		reason = "more than one Authorization header"
	default:
		presented, code := verdict.BearerToken(all[0], len(all[0]))
		if code != engine.CodeOK {
			reason = "not a Bearer credential"
			break
		}
		got := sha256.Sum256(presented)
		if subtle.ConstantTimeCompare(got[:], s.adminHash[:]) == 1 {
			return principal{}, true
		}
		reason = "unknown token"
		if s.tokens != nil && admin.LooksLikeSecret(string(presented)) {
			c, cancel := opContext()
			t, err := s.tokens.TokenByHash(c, got)
			cancel()
			switch {
			case err == nil && admin.HashEqual(t.Hash, got) && t.RevokedAt.IsZero():
				return principal{token: t}, true
			case err == nil:
				reason, tokenID = "revoked token", t.ID
			case !errors.Is(err, admin.ErrTokenNotFound):
				if ok, suppressed := s.storeFailLog.allow(); ok {
					s.log.Error("admin: token store error", withSuppressed([]any{"err", err.Error()}, suppressed)...)
				}
				adminError(ctx, fasthttp.StatusServiceUnavailable, "unavailable", "the key store is unavailable; try again")
				return principal{}, false
			}
		}
	}
	s.authFailed(ctx, route, reason, tokenID)
	ctx.Response.Header.SetBytesKV(hdrWWWAuth, wwwAdmin)
	adminError(ctx, fasthttp.StatusUnauthorized, "unauthorized", "a valid admin bearer token is required (Authorization: Bearer <admin token>)")
	return principal{}, false
}

// logLimiter bounds a kind of log line that clients can provoke (failed
// admin authentications, store errors met by unauthenticated requests): a
// burst of logBurst, then one per logEvery; the lines left out are counted
// and reported with the next one written, so that a flood of bad requests
// cannot flood the log.
type logLimiter struct {
	mu         sync.Mutex
	allowance  float64
	last       time.Time
	suppressed uint64
}

const (
	logBurst = 10
	logEvery = time.Second
)

// allow reports whether a line may be written now and, if so, how many
// were left out before it.
func (l *logLimiter) allow() (ok bool, suppressed uint64) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.allowance = logBurst
	} else {
		l.allowance = min(logBurst, l.allowance+float64(now.Sub(l.last))/float64(logEvery))
	}
	l.last = now
	if l.allowance < 1 {
		l.suppressed++
		return false, 0
	}
	l.allowance--
	suppressed = l.suppressed
	l.suppressed = 0
	return true, suppressed
}

// withSuppressed appends the count of lines left out, when there are any.
func withSuppressed(attrs []any, suppressed uint64) []any {
	if suppressed > 0 {
		attrs = append(attrs, "not_logged_before", suppressed)
	}
	return attrs
}

func (s *Server) authFailed(ctx *fasthttp.RequestCtx, route, reason, tokenID string) {
	s.admin.authFailures.Add(1)
	ok, suppressed := s.authLog.allow()
	if !ok {
		return
	}
	attrs := []any{"remote_ip", ctx.RemoteIP().String(), "method", methodLabel(string(ctx.Method())), "route", route, "reason", reason}
	if tokenID != "" {
		attrs = append(attrs, "token_id", tokenID)
	}
	s.log.Warn("admin authentication failed", withSuppressed(attrs, suppressed)...)
}

// allowProject answers 403 unless p may act on project (write: change it).
func allowProject(ctx *fasthttp.RequestCtx, p principal, project string, write bool) bool {
	if p.token == nil {
		return true
	}
	if p.token.Project != project {
		adminError(ctx, fasthttp.StatusForbidden, "forbidden", "this admin token is limited to project "+p.token.Project)
		return false
	}
	if write && p.token.Scope != admin.ScopeWrite {
		adminError(ctx, fasthttp.StatusForbidden, "forbidden", "this admin token is read-only (scope read); changing keys needs a token of scope write")
		return false
	}
	return true
}

// requireRoot answers 403 unless p is the root admin token.
func requireRoot(ctx *fasthttp.RequestCtx, p principal) bool {
	if p.token == nil {
		return true
	}
	adminError(ctx, fasthttp.StatusForbidden, "forbidden", "only the root admin token may manage admin tokens and read the audit trail")
	return false
}

// newEvent starts the audit event of a change p is about to make: the
// store records it in the change's own transaction when it can
// (admin.WithEvent), else finishAudit appends it after.
func (s *Server) newEvent(p principal, e admin.Event) *admin.Event {
	e.ActorType, e.ActorID = p.actor()
	e.Time = time.Now().UTC().Truncate(time.Microsecond)
	return &e
}

// finishAudit appends e unless the store recorded it with the change. The
// change itself is durable by then: if the record cannot be written the
// failure is logged with the whole event (never a secret) and counted, and
// the request still succeeds.
func (s *Server) finishAudit(e *admin.Event) {
	if e.Recorded || s.auditStore == nil {
		return
	}
	c, cancel := opContext()
	defer cancel()
	if err := s.auditStore.AppendAudit(c, e); err != nil {
		s.admin.auditFailures.Add(1)
		s.log.Error("admin: audit record could not be written", "err", err.Error(), "action", e.Action,
			"actor_type", e.ActorType, "actor_id", e.ActorID, "project", e.Project, "kid", e.KID, "token_id", e.TokenID,
			"forced", e.Forced, "before", string(e.Before), "after", string(e.After))
	}
}

// parseForce reads ?force=true|false (at most once).
func parseForce(ctx *fasthttp.RequestCtx) (force, ok bool) {
	vals := ctx.QueryArgs().PeekMulti("force")
	switch {
	case len(vals) == 0:
		return false, true
	case len(vals) > 1:
	case string(vals[0]) == "true":
		return true, true
	case string(vals[0]) == "false":
		return false, true
	}
	adminError(ctx, fasthttp.StatusBadRequest, "invalid_request", `force must be given at most once, as "true" or "false"`)
	return false, false
}

// guardWindow is how long after a key's last verification the rotation
// guardrail refuses to delete or deactivate it: a token verified then may
// be presented again until it expires, at most max TTL + leeway later; the
// verification may have happened up to one usage flush interval before the
// store (shared by every node on PostgreSQL) records it; and last_used_at
// is kept in whole seconds.
func (s *Server) guardWindow() time.Duration {
	return s.v.MaxTTL() + s.v.Leeway() + s.cfg.UsageFlushInterval + time.Second
}

// keyInUse is the 409 body of the rotation guardrail.
type keyInUse struct {
	Error      string `json:"error"`
	Message    string `json:"message"`
	LastUsedAt string `json:"last_used_at"`
	SafeAfter  string `json:"safe_after"`
}

// checkInUse reports whether k verified a token within the guard window;
// it answers 409 key_in_use then, unless force (forced reports that the
// guardrail was overridden).
func (s *Server) checkInUse(ctx *fasthttp.RequestCtx, k *engine.Key, op string, force bool) (blocked, forced bool) {
	if k.LastUsedAt.IsZero() {
		return false, false
	}
	// Rounded up to whole seconds, as the times are shown.
	safe := k.LastUsedAt.Add(s.guardWindow() + time.Second - 1).Truncate(time.Second).UTC()
	now := s.v.Now()
	if !now.Before(safe) {
		return false, false
	}
	if force {
		s.log.Warn("rotation guardrail overridden (force=true)", "op", op, "project", k.Project, "kid", k.KID,
			"last_used_at", rfc3339(k.LastUsedAt), "safe_after", rfc3339(safe))
		return false, true
	}
	wait := (safe.Sub(now) + time.Second - 1).Truncate(time.Second)
	b, _ := json.Marshal(keyInUse{
		Error: "key_in_use",
		Message: "key " + k.KID + " verified a token at " + rfc3339(k.LastUsedAt) + "; tokens signed with it may still be in use until " +
			rfc3339(safe) + " (max TTL + leeway + usage flush interval). Move signing to another key and retry then, or add ?force=true to " + op + " it anyway",
		LastUsedAt: rfc3339(k.LastUsedAt),
		SafeAfter:  rfc3339(safe),
	})
	ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
	ctx.SetStatusCode(fasthttp.StatusConflict)
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.SetBody(b)
	return true, false
}

// ---- /v1/tokens ----

type createTokenRequest struct {
	Project string `json:"project"`
	Scope   string `json:"scope"`
	Label   string `json:"label"`
}

type createdToken struct {
	admin.TokenObject
	Token string `json:"token"`
}

func (s *Server) handleTokens(ctx *fasthttp.RequestCtx, p principal, id string) {
	if s.tokens == nil {
		adminError(ctx, fasthttp.StatusNotImplemented, "not_supported", "this key store does not keep admin tokens")
		return
	}
	switch {
	case id == "" && ctx.IsGet():
		s.listTokens(ctx)
	case id == "" && ctx.IsPost():
		s.createToken(ctx, p)
	case id != "" && ctx.IsDelete():
		s.revokeToken(ctx, p, id)
	}
}

func (s *Server) listTokens(ctx *fasthttp.RequestCtx) {
	project := ""
	args := ctx.QueryArgs()
	if args.Len() > 0 {
		vals := args.PeekMulti("project")
		if args.Len() != 1 || len(vals) != 1 || !engine.ValidProject(string(vals[0])) {
			adminError(ctx, fasthttp.StatusBadRequest, "invalid_request", "the only query parameter is project, once, matching ^[a-z0-9][a-z0-9_-]{0,62}$")
			return
		}
		project = string(vals[0])
	}
	c, cancel := opContext()
	defer cancel()
	ts, err := s.tokens.ListTokens(c, project)
	if err != nil {
		s.storeError(ctx, "list tokens", project, "", err)
		return
	}
	out := struct {
		Tokens []admin.TokenObject `json:"tokens"`
	}{Tokens: make([]admin.TokenObject, 0, len(ts))}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, t.Object())
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

func (s *Server) createToken(ctx *fasthttp.RequestCtx, p principal) {
	var req createTokenRequest
	if !readJSONBody(ctx, &req) {
		return
	}
	if !engine.ValidProject(req.Project) {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_project", `"project" is required and must match ^[a-z0-9][a-z0-9_-]{0,62}$`)
		return
	}
	if !admin.ValidScope(req.Scope) {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_scope", `"scope" must be "read" (list and get keys) or "write" (also add, update, delete keys)`)
		return
	}
	if !validLabel(req.Label) {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_label", "label must be UTF-8 without control characters, at most 256 bytes")
		return
	}
	t, secret := admin.NewToken(req.Project, req.Scope, req.Label, time.Now())
	c, cancel := opContext()
	defer cancel()
	ev := s.newEvent(p, admin.Event{Action: admin.ActionTokenCreated, Project: t.Project, TokenID: t.ID})
	if err := s.tokens.CreateToken(admin.WithEvent(c, ev), t); err != nil {
		s.storeError(ctx, "create token", req.Project, "", err)
		return
	}
	if !ev.Recorded {
		ev.After = admin.TokenSnapshot(t)
	}
	s.finishAudit(ev)
	s.log.Info("admin token created", "token_id", t.ID, "project", t.Project, "scope", t.Scope)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	writeJSON(ctx, fasthttp.StatusCreated, createdToken{TokenObject: t.Object(), Token: secret})
}

func (s *Server) revokeToken(ctx *fasthttp.RequestCtx, p principal, id string) {
	if !admin.ValidTokenID(id) {
		adminError(ctx, fasthttp.StatusNotFound, "not_found", "no valid admin token with this id")
		return
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	c, cancel := opContext()
	defer cancel()
	ev := s.newEvent(p, admin.Event{Action: admin.ActionTokenRevoked, TokenID: id})
	before, err := s.tokens.RevokeToken(admin.WithEvent(c, ev), id, now)
	if errors.Is(err, admin.ErrTokenNotFound) {
		adminError(ctx, fasthttp.StatusNotFound, "not_found", "no valid admin token with this id (unknown or already revoked)")
		return
	}
	if err != nil {
		s.storeError(ctx, "revoke token", "", "", err)
		return
	}
	if !ev.Recorded {
		after := before.Clone()
		after.RevokedAt = now
		ev.Project, ev.Before, ev.After = before.Project, admin.TokenSnapshot(before), admin.TokenSnapshot(after)
	}
	s.finishAudit(ev)
	s.log.Info("admin token revoked", "token_id", id, "project", before.Project)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func validLabel(l string) bool {
	if len(l) > admin.MaxLabelLength || !utf8.ValidString(l) {
		return false
	}
	for _, r := range l {
		if r < 0x20 || r == 0x7F {
			return false
		}
	}
	return true
}

// ---- /v1/audit ----

type auditActor struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

type auditEvent struct {
	ID      int64           `json:"id"`
	Time    string          `json:"time"`
	Actor   auditActor      `json:"actor"`
	Action  string          `json:"action"`
	Project string          `json:"project,omitempty"`
	KID     string          `json:"kid,omitempty"`
	TokenID string          `json:"token_id,omitempty"`
	Forced  bool            `json:"forced"`
	Before  json.RawMessage `json:"before"`
	After   json.RawMessage `json:"after"`
}

func nullIfEmpty(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage("null")
	}
	return r
}

func (s *Server) listAudit(ctx *fasthttp.RequestCtx) {
	if s.auditStore == nil {
		adminError(ctx, fasthttp.StatusNotImplemented, "not_supported", "this key store does not keep an audit trail")
		return
	}
	f := admin.AuditFilter{Limit: admin.DefaultAuditLimit}
	var bad string
	seen := map[string]bool{}
	ctx.QueryArgs().VisitAll(func(k, v []byte) {
		if bad != "" {
			return
		}
		name, val := string(k), string(v)
		if seen[name] {
			bad = "query parameter " + strconv.Quote(name) + " is given more than once"
			return
		}
		seen[name] = true
		switch name {
		case "project":
			f.Project = val
			if !engine.ValidProject(val) {
				bad = "project must match ^[a-z0-9][a-z0-9_-]{0,62}$"
			}
		case "kid":
			f.KID = val
			if !engine.ValidKID(val) {
				bad = "kid must match ^[A-Za-z0-9._-]{1,128}$"
			}
		case "action":
			f.Action = val
			if !admin.ValidAction(val) {
				bad = "action must be one of key.created, key.generated, key.imported, key.updated, key.deleted, token.created, token.revoked"
			}
		case "since", "until":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				bad = name + " must be an RFC 3339 time such as 2026-01-02T15:04:05Z"
			} else if name == "since" {
				f.Since = t
			} else {
				f.Until = t
			}
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > admin.MaxAuditLimit {
				bad = "limit must be a whole number from 1 to " + strconv.Itoa(admin.MaxAuditLimit)
			}
			f.Limit = n
		case "cursor":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 1 {
				bad = "cursor must be the next_cursor of a previous page"
			}
			f.Before = n
		default:
			bad = "unknown query parameter " + strconv.Quote(name) + " (known: project, kid, action, since, until, limit, cursor)"
		}
	})
	if bad != "" {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_request", bad)
		return
	}
	c, cancel := opContext()
	defer cancel()
	evs, err := s.auditStore.ListAudit(c, f)
	if err != nil {
		s.storeError(ctx, "list audit", f.Project, f.KID, err)
		return
	}
	out := struct {
		Events     []auditEvent `json:"events"`
		NextCursor *string      `json:"next_cursor"`
	}{Events: make([]auditEvent, 0, len(evs))}
	for _, e := range evs {
		out.Events = append(out.Events, auditEvent{
			ID: e.ID, Time: e.Time.UTC().Format(time.RFC3339Nano), Actor: auditActor{e.ActorType, e.ActorID},
			Action: e.Action, Project: e.Project, KID: e.KID, TokenID: e.TokenID, Forced: e.Forced,
			Before: nullIfEmpty(e.Before), After: nullIfEmpty(e.After),
		})
	}
	if len(evs) == f.Limit {
		next := strconv.FormatInt(evs[len(evs)-1].ID, 10)
		out.NextCursor = &next
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}
