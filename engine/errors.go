package engine

import (
	"errors"
	"strconv"
)

// Code is a stable verification error code, as listed in docs/API.md. Codes are
// part of the public contract: the server puts them in response bodies and
// the load generator checks them, so they never change spelling.
type Code uint8

// The verification error codes. CodeOK is the zero value and means "no error".
const (
	CodeOK Code = iota
	CodeMissingToken
	CodeTokenTooLarge
	CodeMalformed
	CodeUnsupportedAlgorithm
	CodeUnsupportedHeader
	CodeMissingKID
	CodeUnknownKID
	CodeKeyInactive
	CodeMissingClaim
	CodeExpired
	CodeNotYetValid
	CodeIssuedInFuture
	CodeTTLExceeded
	CodeAudienceMismatch
	CodeInvalidSignature
	numCodes
)

var codeNames = [numCodes]string{
	CodeOK:                   "ok",
	CodeMissingToken:         "missing_token",
	CodeTokenTooLarge:        "token_too_large",
	CodeMalformed:            "malformed",
	CodeUnsupportedAlgorithm: "unsupported_algorithm",
	CodeUnsupportedHeader:    "unsupported_header",
	CodeMissingKID:           "missing_kid",
	CodeUnknownKID:           "unknown_kid",
	CodeKeyInactive:          "key_inactive",
	CodeMissingClaim:         "missing_claim",
	CodeExpired:              "expired",
	CodeNotYetValid:          "not_yet_valid",
	CodeIssuedInFuture:       "issued_in_future",
	CodeTTLExceeded:          "ttl_exceeded",
	CodeAudienceMismatch:     "audience_mismatch",
	CodeInvalidSignature:     "invalid_signature",
}

var codeMessages = [numCodes]string{
	CodeOK:                   "the token is valid",
	CodeMissingToken:         "no bearer token was presented",
	CodeTokenTooLarge:        "the token is larger than the configured limit",
	CodeMalformed:            "the token is not a well-formed compact JWS with strict base64url and JSON",
	CodeUnsupportedAlgorithm: "the token's alg is not RS256",
	CodeUnsupportedHeader:    "the token's header carries a parameter that is not supported (crit, cty or an unknown typ)",
	CodeMissingKID:           "the token's header has no kid",
	CodeUnknownKID:           "no key is registered under the token's kid",
	CodeKeyInactive:          "the key named by the token's kid is inactive",
	CodeMissingClaim:         "a required claim is missing or empty",
	CodeExpired:              "the token has expired",
	CodeNotYetValid:          "the token is not valid yet (nbf)",
	CodeIssuedInFuture:       "the token's iat is in the future",
	CodeTTLExceeded:          "the token's lifetime (exp - iat) is longer than allowed",
	CodeAudienceMismatch:     "the token's aud does not name the project that owns the key",
	CodeInvalidSignature:     "the token's signature does not verify under the key",
}

// String returns the code's wire name, e.g. "unknown_kid".
func (c Code) String() string {
	if c < numCodes {
		return codeNames[c]
	}
	return "unknown_code"
}

// Message returns a human sentence describing the code. It never contains
// any part of the token.
func (c Code) Message() string {
	if c < numCodes {
		return codeMessages[c]
	}
	return "unknown error"
}

// Codes returns every error code (CodeOK excluded) in docs/API.md order.
func Codes() []Code {
	out := make([]Code, 0, numCodes-1)
	for c := CodeMissingToken; c < numCodes; c++ {
		out = append(out, c)
	}
	return out
}

// ParseCode maps a wire name back to its Code.
func ParseCode(name string) (Code, bool) {
	for c := Code(0); c < numCodes; c++ {
		if codeNames[c] == name {
			return c, true
		}
	}
	return 0, false
}

// Error is the error type returned by verification. Every value is one of the
// preallocated sentinels below, so returning one never allocates; compare
// with errors.Is, or extract the Code with errors.As or CodeOf.
type Error struct {
	Code Code
	// Detail refines Code for the human message (which claim is missing
	// or of the wrong type); DetailNone for most errors. The code, not
	// the detail, is the contract: errors.Is compares codes only.
	Detail Detail
	claim  string // the required claim a DetailClaim* error is about
}

// Detail says more about an Error than its Code, for messages.
type Detail uint8

// The details of CodeMissingClaim.
const (
	DetailNone Detail = iota
	// DetailMissingExp: the token has no exp.
	DetailMissingExp
	// DetailMissingIat: the token has no iat.
	DetailMissingIat
	// DetailClaimAbsent: a required claim (Claim) is absent.
	DetailClaimAbsent
	// DetailClaimNotString: a required claim (Claim) is present but not a
	// non-empty string.
	DetailClaimNotString
)

// Claim returns the required claim a DetailClaimAbsent or
// DetailClaimNotString error is about ("" otherwise).
func (e *Error) Claim() string { return e.claim }

// Message returns the human sentence for the error: its code's message,
// made precise by its detail. It never contains any part of the token.
func (e *Error) Message() string {
	switch e.Detail {
	case DetailMissingExp:
		return "the token has no exp claim (exp and iat are required)"
	case DetailMissingIat:
		return "the token has no iat claim (exp and iat are required)"
	case DetailClaimAbsent:
		return "the token has no " + strconv.Quote(e.claim) + " claim, which this server requires"
	case DetailClaimNotString:
		return "the token's " + strconv.Quote(e.claim) + " claim must be a non-empty string (this server requires it)"
	}
	return e.Code.Message()
}

func (e *Error) Error() string { return "jwtgate: " + e.Code.String() + ": " + e.Message() }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// The sentinel verification errors, one per code.
var (
	ErrMissingToken         = &Error{Code: CodeMissingToken}
	ErrTokenTooLarge        = &Error{Code: CodeTokenTooLarge}
	ErrMalformed            = &Error{Code: CodeMalformed}
	ErrUnsupportedAlgorithm = &Error{Code: CodeUnsupportedAlgorithm}
	ErrUnsupportedHeader    = &Error{Code: CodeUnsupportedHeader}
	ErrMissingKID           = &Error{Code: CodeMissingKID}
	ErrUnknownKID           = &Error{Code: CodeUnknownKID}
	ErrKeyInactive          = &Error{Code: CodeKeyInactive}
	ErrMissingClaim         = &Error{Code: CodeMissingClaim}
	ErrExpired              = &Error{Code: CodeExpired}
	ErrNotYetValid          = &Error{Code: CodeNotYetValid}
	ErrIssuedInFuture       = &Error{Code: CodeIssuedInFuture}
	ErrTTLExceeded          = &Error{Code: CodeTTLExceeded}
	ErrAudienceMismatch     = &Error{Code: CodeAudienceMismatch}
	ErrInvalidSignature     = &Error{Code: CodeInvalidSignature}

	// ErrMissingExp and ErrMissingIat are ErrMissingClaim (errors.Is) that
	// say which registered claim is missing.
	ErrMissingExp = &Error{Code: CodeMissingClaim, Detail: DetailMissingExp}
	ErrMissingIat = &Error{Code: CodeMissingClaim, Detail: DetailMissingIat}
)

// requiredClaimErrors are the preallocated errors of one required claim,
// so that returning them never allocates.
type requiredClaimErrors struct {
	absent, notString *Error
}

func newRequiredClaimErrors(name string) requiredClaimErrors {
	return requiredClaimErrors{
		absent:    &Error{Code: CodeMissingClaim, Detail: DetailClaimAbsent, claim: name},
		notString: &Error{Code: CodeMissingClaim, Detail: DetailClaimNotString, claim: name},
	}
}

var errByCode = [numCodes]*Error{
	CodeMissingToken:         ErrMissingToken,
	CodeTokenTooLarge:        ErrTokenTooLarge,
	CodeMalformed:            ErrMalformed,
	CodeUnsupportedAlgorithm: ErrUnsupportedAlgorithm,
	CodeUnsupportedHeader:    ErrUnsupportedHeader,
	CodeMissingKID:           ErrMissingKID,
	CodeUnknownKID:           ErrUnknownKID,
	CodeKeyInactive:          ErrKeyInactive,
	CodeMissingClaim:         ErrMissingClaim,
	CodeExpired:              ErrExpired,
	CodeNotYetValid:          ErrNotYetValid,
	CodeIssuedInFuture:       ErrIssuedInFuture,
	CodeTTLExceeded:          ErrTTLExceeded,
	CodeAudienceMismatch:     ErrAudienceMismatch,
	CodeInvalidSignature:     ErrInvalidSignature,
}

// ErrorFor returns the sentinel error for c, or nil for CodeOK.
func ErrorFor(c Code) error {
	if c == CodeOK || c >= numCodes {
		return nil
	}
	return errByCode[c]
}

// CodeOf returns the Code carried by err: CodeOK for nil, and
// CodeMalformed for an error that is not a verification error (which the
// verifier never returns; it is the safe reading).
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	if e, ok := err.(*Error); ok { // the verifier's own errors: no allocation
		return e.Code
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeMalformed
}

// Errors of key management (the store and key parsing). They are not
// verification codes: the server maps them to 400/404/409.
var (
	// ErrKeyNotFound: no key under that kid (or not in that project).
	ErrKeyNotFound = errors.New("key not found")
	// ErrKIDTaken: a key with that kid already exists.
	ErrKIDTaken = errors.New("kid already registered")
	// ErrStoreClosed: the store was closed.
	ErrStoreClosed = errors.New("key store closed")
)
