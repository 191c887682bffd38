package loadgen_test

import (
	"fmt"

	"github.com/jwtgate/jwtgate/loadgen"
)

func ExampleParseMix() {
	mix, err := loadgen.ParseMix("valid=90,expired=5,unknown_kid=5")
	if err != nil {
		panic(err)
	}
	c := mix.Counts(1000)
	exp, _ := loadgen.ParseClass("expired")
	fmt.Println(mix.Total(), c[loadgen.Valid], c[exp])
	// Output: 100 900 50
}

func ExampleCheck() {
	expect, _ := loadgen.ParseClass("ttl_exceeded")
	wwwAuth := []byte(`Bearer error="invalid_token", error_description="ttl_exceeded"`)
	got, ok := loadgen.Check(expect, 401, wwwAuth, nil)
	fmt.Println(got, ok)
	got, ok = loadgen.Check(expect, 200, nil, []byte(`{"valid":true}`))
	fmt.Println(got, ok)
	// Output:
	// ttl_exceeded true
	// valid false
}

func ExampleParseRate() {
	r, _ := loadgen.ParseRate("100/s..500/s")
	fmt.Println(r.Ramp(), r.Mean())
	// Output: true 300
}
