package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"runtime"
	"strconv"
	"time"

	"github.com/jwtgate/jwtgate/admin"
	"github.com/jwtgate/jwtgate/engine"
	"github.com/valyala/fasthttp"
)

// Key-pair generation: POST /v1/projects/{project}/keys:generate makes an
// RSA key pair, registers its public half like POST .../keys, and returns
// the private half once, as PEM. The private key is never stored, never
// logged, and in no later response.

const routeGenerate = "/v1/projects/{project}/keys:generate"

// DefaultGenerateBits is the modulus size of a generated key pair when the
// request names none (raised to the key policy's minimum if that is larger).
const DefaultGenerateBits = 2048

// generateWait is how long a generation request waits for a free slot
// before it is answered 503 (generations run one or a few at a time).
var generateWait = 5 * time.Second

var (
	allowGenerate = []byte("POST")
	noStore       = []byte("no-store")
)

// generateSlots bounds concurrent key generations: a 2048-bit pair costs
// tens of milliseconds of one core (4096 bits: up to seconds), so at most a
// quarter of the cores (at least one) generate at once, and verification
// keeps the rest.
func generateSlots() chan struct{} {
	return make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/4))
}

type generateKeyRequest struct {
	Label string  `json:"label"`
	KID   *string `json:"kid"`
	Bits  *int    `json:"bits"`
}

// generatedKey is the 201 body: the key object and, this once, the
// private key.
type generatedKey struct {
	keyObject
	PrivateKey string `json:"private_key"`
}

func (s *Server) generateKey(ctx *fasthttp.RequestCtx, p principal, project string) {
	var req generateKeyRequest
	if len(bytes.TrimSpace(ctx.PostBody())) > 0 && !readJSONBody(ctx, &req) {
		return
	}
	policy := s.v.KeyPolicy()
	bits := max(DefaultGenerateBits, policy.MinBits)
	if req.Bits != nil {
		bits = *req.Bits
	}
	if bits < policy.MinBits || bits > policy.MaxBits || bits%1024 != 0 {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_bits", "bits must be a multiple of 1024 between "+
			strconv.Itoa(policy.MinBits)+" and "+strconv.Itoa(policy.MaxBits)+" (the server's key policy); default "+strconv.Itoa(max(DefaultGenerateBits, policy.MinBits)))
		return
	}
	if req.KID != nil && !engine.ValidKID(*req.KID) {
		adminError(ctx, fasthttp.StatusBadRequest, "invalid_kid", `kid must match ^[A-Za-z0-9._-]{1,128}$ and not be "." or ".."`)
		return
	}
	wait, cancelWait := context.WithTimeout(context.Background(), generateWait)
	defer cancelWait()
	select {
	case s.genSlots <- struct{}{}:
	case <-wait.Done():
		ctx.Response.Header.SetBytesKV(hdrRetry, retryOne)
		adminError(ctx, fasthttp.StatusServiceUnavailable, "busy", "other key pairs are being generated; try again shortly")
		return
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	<-s.genSlots
	if err != nil {
		s.log.Error("admin: key generation failed", "project", project, "bits", bits, "err", err.Error())
		adminError(ctx, fasthttp.StatusInternalServerError, "internal", "key generation failed; see the server log")
		return
	}
	defer wipePrivateKey(priv)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		adminError(ctx, fasthttp.StatusInternalServerError, "internal", "could not encode the generated key")
		return
	}
	defer clear(der)
	// A copy of the public half: nothing registered points into priv.
	pub := &rsa.PublicKey{N: new(big.Int).Set(priv.N), E: priv.E}
	k := &engine.Key{Project: project, Label: req.Label, Public: pub}
	if req.KID != nil {
		k.KID = *req.KID
	}
	nk := s.registerKey(ctx, p, admin.ActionKeyGenerated, "generate", k)
	if nk == nil {
		return
	}
	s.log.Info("key pair generated; private key returned once, not kept", "project", project, "kid", nk.KID, "bits", nk.Bits(), "thumbprint", nk.Thumbprint())
	block := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	defer clear(block)
	body, err := json.Marshal(generatedKey{keyObject: toKeyObject(nk), PrivateKey: string(block)})
	if err != nil {
		adminError(ctx, fasthttp.StatusInternalServerError, "internal", "could not encode the response")
		return
	}
	out := append(body, '\n') // may be a new array: both are wiped
	defer clear(body)
	defer clear(out)
	ctx.SetStatusCode(fasthttp.StatusCreated)
	ctx.Response.Header.SetContentTypeBytes(ctJSON)
	ctx.Response.Header.SetBytesKV(hdrCache, noStore)
	ctx.SetBody(out) // copies
}

// wipePrivateKey overwrites the private parts of priv that it can reach
// (best effort: Go gives no guarantee that no copy remains elsewhere).
func wipePrivateKey(priv *rsa.PrivateKey) {
	priv.D.SetInt64(0)
	for _, p := range priv.Primes {
		p.SetInt64(0)
	}
	if priv.Precomputed.Dp != nil {
		priv.Precomputed.Dp.SetInt64(0)
		priv.Precomputed.Dq.SetInt64(0)
		priv.Precomputed.Qinv.SetInt64(0)
	}
}
