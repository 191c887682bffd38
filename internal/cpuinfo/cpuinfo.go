// Package cpuinfo names the host's CPU precisely enough to tell benchmark
// hosts apart: vendor, family/model/stepping and the instruction-set flags
// the RSA code depends on, read from /proc/cpuinfo. The `model name` line
// alone does not (two EPYC generations can share it).
//
// Benchmarks print it as benchstat configuration lines (Config), so every
// results file carries the identity of the CPU it was measured on.
package cpuinfo

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"strings"
)

// Relevant are the /proc/cpuinfo flags that select code paths in jwtgate
// (MULX needs bmi2, ADCX/ADOX need adx) or that OpenSSL uses for RSA.
var Relevant = []string{"bmi2", "adx", "avx2", "avx512f", "avx512ifma"}

// CPU is the identity of the first processor listed in /proc/cpuinfo. Empty
// fields were not available (another OS, or a kernel that omits them).
type CPU struct {
	Vendor    string   // vendor_id (x86) or "CPU implementer" (arm64)
	Family    string   // cpu family (x86) or "CPU architecture" (arm64)
	Model     string   // model (x86) or "CPU part" (arm64)
	Stepping  string   // stepping (x86) or "CPU variant"/"CPU revision" (arm64)
	ModelName string   // model name, if any
	Flags     []string // the Relevant flags the CPU has, in Relevant's order
}

// Read returns the host's CPU identity; on error or on a system without
// /proc/cpuinfo it returns what it could find (possibly nothing).
func Read() CPU {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return CPU{}
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads the first processor block of a /proc/cpuinfo text.
func Parse(r io.Reader) CPU {
	var c CPU
	var flags string
	var variant, revision string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := map[string]bool{}
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if seen[k] { // later processors repeat the same keys
			continue
		}
		seen[k] = true
		switch k {
		case "vendor_id", "CPU implementer":
			c.Vendor = v
		case "cpu family", "CPU architecture":
			c.Family = v
		case "model", "CPU part":
			c.Model = v
		case "stepping":
			c.Stepping = v
		case "CPU variant":
			variant = v
		case "CPU revision":
			revision = v
		case "model name":
			c.ModelName = v
		case "flags", "Features":
			flags = v
		}
	}
	if c.Stepping == "" && (variant != "" || revision != "") {
		c.Stepping = variant + "/" + revision
	}
	have := map[string]bool{}
	for _, f := range strings.Fields(flags) {
		have[f] = true
	}
	for _, f := range Relevant {
		if have[f] {
			c.Flags = append(c.Flags, f)
		}
	}
	return c
}

// ID is "GenuineIntel family 6 model 167 stepping 1", or "unknown".
func (c CPU) ID() string {
	if c.Vendor == "" && c.Family == "" && c.Model == "" {
		return "unknown"
	}
	return c.Vendor + " family " + orQ(c.Family) + " model " + orQ(c.Model) + " stepping " + orQ(c.Stepping)
}

// FlagList is the relevant flags present, space-separated, or "none".
func (c CPU) FlagList() string {
	if len(c.Flags) == 0 {
		return "none"
	}
	return strings.Join(c.Flags, " ")
}

// String is the one-line identity: ID, model name and flags.
func (c CPU) String() string {
	s := c.ID()
	if c.ModelName != "" {
		s += " (" + c.ModelName + ")"
	}
	return s + "; flags: " + c.FlagList()
}

// Config returns benchstat configuration lines ("key: value\n") naming the
// CPU: cpu-id, cpu-name, cpu-flags and goarch.
func (c CPU) Config() string {
	name := c.ModelName
	if name == "" {
		name = "unknown"
	}
	return "cpu-id: " + c.ID() + "\ncpu-name: " + name + "\ncpu-flags: " + c.FlagList() + "\ngoarch-run: " + runtime.GOARCH + "\n"
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
