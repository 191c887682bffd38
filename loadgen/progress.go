package loadgen

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// ProgressBar returns a MintConfig.Progress function that draws on w: a
// bar with rate and ETA redrawn in place when w is a terminal (tty), else a
// plain line every interval (and at the end).
func ProgressBar(w io.Writer, tty bool, interval time.Duration) func(done, total int64) {
	var mu sync.Mutex
	start := time.Now()
	var lastLine time.Time
	finished := false
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return
		}
		now := time.Now()
		end := done >= total
		if !tty && !end && now.Sub(lastLine) < interval {
			return
		}
		lastLine = now
		el := now.Sub(start).Seconds()
		rate := 0.0
		if el > 0 {
			rate = float64(done) / el
		}
		eta := "?"
		if rate > 0 {
			eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
		}
		line := fmt.Sprintf("%s %d/%d %.0f tokens/s ETA %s", bar(done, total, 30), done, total, rate, eta)
		if tty {
			fmt.Fprintf(w, "\r%s\x1b[K", line)
			if end {
				fmt.Fprintln(w)
			}
		} else {
			fmt.Fprintln(w, line)
		}
		finished = end
	}
}

func bar(done, total int64, width int) string {
	if total <= 0 {
		total = 1
	}
	n := int(int64(width) * min(done, total) / total)
	return fmt.Sprintf("[%s%s] %3d%%", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*min(done, total)/total)
}
