//go:build race

package scale

// raceEnabled: under the race detector TestScaleSmall registers fewer keys
// (every map access and atomic is instrumented, and make test runs it so).
const raceEnabled = true
