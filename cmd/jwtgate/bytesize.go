package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// byteSize is a flag value in bytes, written as a plain number or with a
// binary suffix: 1048576, 1024KiB, 64MiB, 1GiB.
type byteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

func (b *byteSize) String() string {
	v := int64(*b)
	for _, u := range byteUnits[:3] {
		if v != 0 && v%u.mult == 0 {
			return strconv.FormatInt(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

func (b *byteSize) Set(s string) error {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return errors.New("want a non-negative whole number of bytes, optionally with a KiB, MiB or GiB suffix (e.g. 64MiB)")
	}
	*b = byteSize(v * mult)
	return nil
}

func (b *byteSize) Type() string { return "bytes" }
