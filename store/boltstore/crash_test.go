package boltstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/store/storetest"
	bolt "go.etcd.io/bbolt"
)

const (
	envCrashDB    = "JWTGATE_BOLTSTORE_CRASH_DB"
	envCrashRound = "JWTGATE_BOLTSTORE_CRASH_ROUND"
)

// TestHelperWriter is the child process of TestCrashDurability: it creates
// keys in a loop and prints "ACK <kid>" only after Create returned. It does
// nothing when run normally.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(envCrashDB)
	if path == "" {
		t.Skip("helper process of TestCrashDurability (runs only when re-executed by it)")
	}
	round := os.Getenv(envCrashRound)
	s, err := Open(path, WithLockTimeout(5*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer: open:", err)
		os.Exit(3)
	}
	deadline := time.Now().Add(60 * time.Second) // never outlive a lost parent for long
	for i := 0; time.Now().Before(deadline); i++ {
		kid := fmt.Sprintf("r%s-%06d", round, i)
		k := storetest.NewKey(kid, "crash", base.Add(time.Duration(i)*time.Millisecond))
		if err := s.Create(ctx, k); err != nil {
			fmt.Fprintln(os.Stderr, "writer: create:", err)
			os.Exit(4)
		}
		if i%16 == 0 { // some usage writes in between, as a server does
			if err := s.RecordUsage(ctx, []engine.Usage{{KID: kid, Count: 1, LastUsed: base}}); err != nil {
				fmt.Fprintln(os.Stderr, "writer: usage:", err)
				os.Exit(5)
			}
		}
		if _, err := os.Stdout.WriteString("ACK " + kid + "\n"); err != nil {
			os.Exit(6)
		}
	}
	os.Exit(7)
}

// TestCrashDurability kills a writer process with SIGKILL at a random moment
// and checks that every key whose Create had returned is in the store, which
// must open and pass bbolt's consistency check. Three rounds on one file.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes; not in -short")
	}
	path := filepath.Join(t.TempDir(), "keys.db")
	var acked []string
	for round := 1; round <= 3; round++ {
		acked = append(acked, crashRound(t, path, round)...)

		s, err := Open(path, WithLockTimeout(5*time.Second))
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		var checkErrs []error
		s.db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				checkErrs = append(checkErrs, err)
			}
			return nil
		})
		if len(checkErrs) > 0 {
			s.Close()
			t.Fatalf("round %d: bbolt consistency check: %v", round, checkErrs)
		}
		for _, kid := range acked {
			k, err := s.Get(ctx, kid)
			if err != nil {
				s.Close()
				t.Fatalf("round %d: acknowledged kid %s lost: %v", round, kid, err)
			}
			if k.Project != "crash" || k.Public == nil {
				s.Close()
				t.Fatalf("round %d: kid %s read back wrong", round, kid)
			}
		}
		l, err := s.List(ctx, "crash")
		if err != nil {
			s.Close()
			t.Fatalf("round %d: List: %v", round, err)
		}
		// The unacknowledged in-flight Create may or may not have committed.
		if len(l) < len(acked) || len(l) > len(acked)+3 {
			s.Close()
			t.Fatalf("round %d: List has %d keys, %d acknowledged", round, len(l), len(acked))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d acknowledged keys in total, %d listed", round, len(acked), len(l))
	}
}

// crashRound runs one writer, kills it after a random number of acks and a
// random pause, and returns every kid it acknowledged (including acks still
// in the pipe when it died).
func crashRound(t *testing.T, path string, round int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDB+"="+path, fmt.Sprintf("%s=%d", envCrashRound, round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := make(chan struct{})
	timer := time.AfterFunc(45*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()

	target := 200 + rand.IntN(200)
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		kid, ok := strings.CutPrefix(line, "ACK ")
		if !ok {
			continue // test framework output
		}
		acked = append(acked, kid)
		if len(acked) == target {
			go func() {
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				close(killed) // before the signal: Wait may return right after it
				cmd.Process.Signal(syscall.SIGKILL)
			}()
		}
	}
	err = cmd.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("round %d: writer ended before the kill after %d acks (%v); stderr:\n%s", round, len(acked), err, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: writer was not killed by SIGKILL: %v; stderr:\n%s", round, err, stderr.String())
	}
	t.Logf("round %d: killed after %d acks (target %d)", round, len(acked), target)
	return acked
}
