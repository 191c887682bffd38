package main

import (
	"bufio"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Results are the samples of a `go test -bench` output (benchstat format):
// for each benchmark name (without the -GOMAXPROCS suffix) and unit, the
// values of every run, plus the file's configuration lines (key: value).
type Results struct {
	Config  map[string]string
	Samples map[string]map[string][]float64 // name -> unit -> values
	Order   []string                        // names in first-seen order
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// Parse reads benchmark output. Lines that are neither configuration nor
// benchmark results (PASS, ok, log output) are ignored.
func Parse(r io.Reader) (*Results, error) {
	res := &Results{Config: map[string]string{}, Samples: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Benchmark") {
			f := strings.Fields(line)
			if len(f) < 4 || len(f)%2 != 0 {
				continue
			}
			if _, err := strconv.Atoi(f[1]); err != nil {
				continue
			}
			name := procsSuffix.ReplaceAllString(f[0], "")
			units := res.Samples[name]
			if units == nil {
				units = map[string][]float64{}
				res.Samples[name] = units
				res.Order = append(res.Order, name)
			}
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					continue
				}
				units[f[i+1]] = append(units[f[i+1]], v)
			}
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok && k != "" && !strings.ContainsAny(k, " \t") {
			if _, seen := res.Config[k]; !seen {
				res.Config[k] = strings.TrimSpace(v)
			}
		}
	}
	return res, sc.Err()
}

// Median returns the median of name's unit, and whether there is any.
func (r *Results) Median(name, unit string) (float64, bool) {
	vs := r.Samples[name][unit]
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// Count returns how many runs name has.
func (r *Results) Count(name string) int { return len(r.Samples[name]["ns/op"]) }

// OpenSSL is the RSA-2048 line of `openssl speed rsa2048`.
type OpenSSL struct {
	Version        string
	SignS, VerifyS float64 // operations per second
}

var opensslRSA = regexp.MustCompile(`^rsa\s+2048\s+bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)`)

// ParseOpenSSL reads `openssl speed rsa2048` output (OpenSSL 1.1 and 3.x).
func ParseOpenSSL(r io.Reader) (OpenSSL, bool) {
	var o OpenSSL
	ok := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if o.Version == "" {
			if v, ok := strings.CutPrefix(line, "version: "); ok { // OpenSSL 3 speed
				o.Version = strings.TrimSpace(v)
			} else if strings.HasPrefix(line, "OpenSSL ") { // OpenSSL 1.1 speed, openssl version
				o.Version = strings.Fields(line)[1]
			}
		}
		if m := opensslRSA.FindStringSubmatch(line); m != nil {
			o.SignS, _ = strconv.ParseFloat(m[1], 64)
			o.VerifyS, _ = strconv.ParseFloat(m[2], 64)
			ok = o.VerifyS > 0
		}
	}
	return o, ok
}
