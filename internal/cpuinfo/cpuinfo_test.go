package cpuinfo

import (
	"runtime"
	"strings"
	"testing"
)

const x86 = `processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 1
model name	: AMD EPYC 7B13
stepping	: 1
flags		: fpu sse2 avx2 bmi2 adx sha_ni
processor	: 1
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 17
stepping	: 2
flags		: fpu
`

const arm = `processor	: 0
BogoMIPS	: 50.00
Features	: fp asimd aes pmull sha1 sha2 crc32 atomics
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x3
CPU part	: 0xd0c
CPU revision	: 1
`

func TestParseX86(t *testing.T) {
	c := Parse(strings.NewReader(x86))
	if got, want := c.ID(), "AuthenticAMD family 25 model 1 stepping 1"; got != want {
		t.Errorf("ID = %q, want %q (first processor only)", got, want)
	}
	if got, want := c.FlagList(), "bmi2 adx avx2"; got != want {
		t.Errorf("FlagList = %q, want %q", got, want)
	}
	if got, want := c.String(), "AuthenticAMD family 25 model 1 stepping 1 (AMD EPYC 7B13); flags: bmi2 adx avx2"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if !strings.Contains(c.Config(), "cpu-id: AuthenticAMD family 25 model 1 stepping 1\n") {
		t.Errorf("Config = %q", c.Config())
	}
}

func TestParseARM(t *testing.T) {
	c := Parse(strings.NewReader(arm))
	if got, want := c.ID(), "0x41 family 8 model 0xd0c stepping 0x3/1"; got != want {
		t.Errorf("ID = %q, want %q", got, want)
	}
	if c.FlagList() != "none" {
		t.Errorf("FlagList = %q, want none", c.FlagList())
	}
}

func TestParseEmpty(t *testing.T) {
	if got := Parse(strings.NewReader("")).String(); got != "unknown; flags: none" {
		t.Errorf("String = %q", got)
	}
}

func TestThreadCPU(t *testing.T) {
	c0, ok := ThreadCPU()
	if ok != (runtime.GOOS == "linux") {
		t.Fatalf("ThreadCPU ok = %v on %s", ok, runtime.GOOS)
	}
	if !ok {
		return
	}
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i ^ x>>3
	}
	c1, _ := ThreadCPU()
	if c1 <= c0 || x == 42 {
		t.Errorf("ThreadCPU did not advance over a busy loop: %d -> %d", c0, c1)
	}
}
