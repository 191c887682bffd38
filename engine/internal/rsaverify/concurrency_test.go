package rsaverify

import (
	"crypto/sha256"
	"sync"
	"testing"
)

// TestConcurrent shares one key between goroutines (run with -race); the
// 16384-bit key exercises the pooled scratch path.
func TestConcurrent(t *testing.T) {
	for _, k := range allKeys(t) {
		if b := k.pub.N.BitLen(); b != 2048 && b != 16384 {
			continue
		}
		digest := sha256.Sum256([]byte("concurrent"))
		sig := k.signEM(encodeEM(k.fast.Size(), sha256Prefix[:], digest[:]))
		bad := append([]byte(nil), sig...)
		bad[10] ^= 4
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					if !k.fast.VerifyPKCS1v15SHA256(&digest, sig) || k.fast.VerifyPKCS1v15SHA256(&digest, bad) {
						t.Errorf("%s: wrong result under concurrency", k.name)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}
