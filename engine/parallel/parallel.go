// Package parallel runs an index loop on all cores. It is under engine/
// because engine may import only the standard library, golang-lru and its
// own packages; the stores use it too.
package parallel

import (
	"runtime"
	"sync"
)

// For calls f(i) for every i in [0, n), spread over GOMAXPROCS goroutines
// (worker w takes w, w+workers, ...), and returns when all calls have
// returned. Calls for different i run concurrently: f must write only to
// its own index of any shared slice.
func For(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				f(i)
			}
		}()
	}
	wg.Wait()
}
