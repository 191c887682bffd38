package loadgen

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxShards bounds n in a Shard.
const MaxShards = 1024

// Shard makes an attack one of n generators run side by side (on one or
// several machines), as Vegeta's distributed-attack recipe does: generator
// i (1-based) sends every n-th target starting at the i-th, at 1/n of the
// rate. Merge puts their results back together. The zero Shard is the
// whole attack. It implements pflag.Value ("2/3").
type Shard struct {
	I, N int
}

// ParseShard reads "i/n" with 1 <= i <= n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || n > MaxShards || i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q: want i/n with 1 <= i <= n <= %d, e.g. 2/3 for the second of three generators", s, MaxShards)
	}
	return Shard{I: i, N: n}, nil
}

// String formats the shard as ParseShard reads it ("" for the zero Shard).
func (s Shard) String() string {
	if s.N == 0 {
		return ""
	}
	return strconv.Itoa(s.I) + "/" + strconv.Itoa(s.N)
}

// Set implements pflag.Value.
func (s *Shard) Set(v string) error {
	x, err := ParseShard(v)
	if err != nil {
		return err
	}
	*s = x
	return nil
}

// Type implements pflag.Value.
func (s *Shard) Type() string { return "i/n" }

// Targets returns the shard's share of t: t[I-1], t[I-1+N], ... Each
// share keeps the file's mix of classes, which mint interleaves.
func (s Shard) Targets(t []Target) []Target {
	if s.N <= 1 {
		return t
	}
	out := make([]Target, 0, len(t)/s.N+1)
	for i := s.I - 1; i < len(t); i += s.N {
		out = append(out, t[i])
	}
	return out
}

// Rate returns r divided by N (both ends of a ramp), exactly: the period
// grows N-fold.
func (s Shard) Rate(r Rate) Rate {
	if s.N <= 1 {
		return r
	}
	r.Start.Per *= time.Duration(s.N)
	if r.Ramp() {
		r.End.Per *= time.Duration(s.N)
	}
	return r
}
