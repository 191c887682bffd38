package loadgen

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jwtgate/jwtgate/engine"
)

// Class is the verdict a minted token is expected to get: Valid, or one of
// the docs/API.md error codes. Its numeric value is the engine.Code of that
// verdict (Valid is engine.CodeOK).
type Class uint8

// Valid is the class of tokens that must be accepted (HTTP 200).
const Valid = Class(engine.CodeOK)

// NumClasses bounds Class values; arrays indexed by Class use it.
const NumClasses = 16

// ExpectHeader is the request header that carries a target's expected
// verdict. jwtgate ignores it.
const ExpectHeader = "X-Loadgen-Expect"

// String returns "valid" or the wire error code.
func (c Class) String() string {
	if c == Valid {
		return "valid"
	}
	return engine.Code(c).String()
}

// Code returns the engine code of the class (engine.CodeOK for Valid).
func (c Class) Code() engine.Code { return engine.Code(c) }

// ParseClass reads a class name: "valid" or an docs/API.md error code.
func ParseClass(s string) (Class, bool) {
	if s == "valid" {
		return Valid, true
	}
	if s == "ok" {
		return 0, false
	}
	c, ok := engine.ParseCode(s)
	if !ok || int(c) >= NumClasses {
		return 0, false
	}
	return Class(c), true
}

// classOfBytes is ParseClass for a byte slice without allocating (the
// compiler does not allocate for a string(b) used in a switch or map index).
func classOfBytes(b []byte) (Class, bool) {
	c, ok := classByName[string(b)]
	return c, ok
}

var classByName = func() map[string]Class {
	m := map[string]Class{"valid": Valid}
	for _, c := range engine.Codes() {
		m[c.String()] = Class(c)
	}
	return m
}()

// MintableClasses lists every class Mint can produce, in docs/API.md order:
// valid and every error code a request's token can carry (missing_token is a
// request without an Authorization header).
func MintableClasses() []Class {
	out := []Class{Valid}
	for _, c := range engine.Codes() {
		out = append(out, Class(c))
	}
	return out
}

// Mix is a weighted choice of classes, e.g. valid=90,expired=3,unknown_kid=3.
// It implements pflag.Value (and flag.Value).
type Mix struct {
	Weights [NumClasses]uint32
}

// MaxMixTotal bounds the sum of a mix's weights (it is the length of the
// interleaving pattern).
const MaxMixTotal = 100_000

// ParseMix reads "class=weight,class=weight,...". Weights are non-negative
// integers; their sum must be positive and at most MaxMixTotal.
func ParseMix(s string) (Mix, error) {
	var m Mix
	if strings.TrimSpace(s) == "" {
		return m, errors.New("mix is empty: give class=weight pairs, e.g. valid=90,expired=10")
	}
	var seen [NumClasses]bool
	total := 0
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return m, fmt.Errorf("mix entry %q: want class=weight", part)
		}
		c, ok := ParseClass(strings.TrimSpace(name))
		if !ok {
			return m, fmt.Errorf("mix entry %q: unknown class %q (classes: %s)", part, name, classList())
		}
		if seen[c] {
			return m, fmt.Errorf("mix entry %q: class %s given twice", part, c)
		}
		seen[c] = true
		n, err := strconv.ParseUint(strings.TrimSpace(w), 10, 32)
		if err != nil {
			return m, fmt.Errorf("mix entry %q: weight must be a non-negative integer", part)
		}
		total += int(n)
		if total > MaxMixTotal {
			return m, fmt.Errorf("mix weights add up to more than %d", MaxMixTotal)
		}
		m.Weights[c] = uint32(n)
	}
	if total == 0 {
		return m, errors.New("mix weights add up to zero")
	}
	return m, nil
}

func classList() string {
	var names []string
	for _, c := range MintableClasses() {
		names = append(names, c.String())
	}
	return strings.Join(names, ", ")
}

// DefaultMix is the mix of the example.
const DefaultMix = "valid=90,expired=3,unknown_kid=3,invalid_signature=1,audience_mismatch=1,unsupported_algorithm=1,ttl_exceeded=1"

// Total is the sum of the weights.
func (m Mix) Total() int {
	t := 0
	for _, w := range m.Weights {
		t += int(w)
	}
	return t
}

// Has reports whether c has a positive weight.
func (m Mix) Has(c Class) bool { return int(c) < NumClasses && m.Weights[c] > 0 }

// String formats the mix as ParseMix reads it, classes in docs/API.md order.
func (m Mix) String() string {
	var parts []string
	for _, c := range MintableClasses() {
		if m.Weights[c] > 0 {
			parts = append(parts, c.String()+"="+strconv.Itoa(int(m.Weights[c])))
		}
	}
	return strings.Join(parts, ",")
}

// Set implements pflag.Value.
func (m *Mix) Set(s string) error {
	v, err := ParseMix(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Type implements pflag.Value.
func (m *Mix) Type() string { return "mix" }

// pattern returns the smooth weighted round-robin order of one period of
// the mix (length Total()), so that every prefix of the token stream holds
// the classes in nearly their proportions.
func (m Mix) pattern() []Class {
	total := m.Total()
	out := make([]Class, 0, total)
	var cur [NumClasses]int
	for len(out) < total {
		best := -1
		for c := range NumClasses {
			if m.Weights[c] == 0 {
				continue
			}
			cur[c] += int(m.Weights[c])
			if best < 0 || cur[c] > cur[best] {
				best = c
			}
		}
		cur[best] -= total
		out = append(out, Class(best))
	}
	return out
}

// Counts returns how many of n tokens fall in each class.
func (m Mix) Counts(n int) [NumClasses]int {
	var out [NumClasses]int
	pat := m.pattern()
	full, rest := n/len(pat), n%len(pat)
	for c := range NumClasses {
		out[c] = full * int(m.Weights[c])
	}
	for _, c := range pat[:rest] {
		out[c]++
	}
	return out
}

// sortedClasses returns the classes with a nonzero count, in docs/API.md order.
func sortedClasses(counts map[Class]int) []Class {
	out := make([]Class, 0, len(counts))
	for c := range counts {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
