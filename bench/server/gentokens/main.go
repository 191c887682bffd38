// Command gentokens writes benchmark tokens, one per line, signed with the
// fixed test key testdata/keys/rsa2048-a.pem, and that key's public PEM.
package main

import (
	"bufio"
	"flag"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/jwtgate/jwtgate/engine/enginetest"
)

func main() {
	kind := flag.String("kind", "valid", "valid, expired or unknown-kid")
	n := flag.Int("n", 1000, "number of distinct tokens")
	kid := flag.String("kid", "bench", "kid the key is registered under")
	project := flag.String("project", "bench", "project")
	ttl := flag.Int64("ttl", 600, "lifetime of valid tokens, seconds")
	pub := flag.String("pub", "", "also write the public key PEM here")
	flag.Parse()
	priv := enginetest.Key("rsa2048-a")
	if *pub != "" {
		if err := os.WriteFile(*pub, enginetest.PublicPEM(&priv.PublicKey), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	now := time.Now().Unix()
	for i := range *n {
		iat, k := now, *kid
		switch *kind {
		case "expired":
			iat = now - 3600
		case "unknown-kid":
			k = "unknown-" + strconv.Itoa(i)
		}
		c := enginetest.Claims(*project, iat, *ttl)
		c["jti"] = strconv.Itoa(i)
		c["groupRef"] = "group-1"
		c["consumerRef"] = "consumer-" + strconv.Itoa(i%100)
		w.WriteString(enginetest.SignRS256(priv, enginetest.Header(k), c))
		w.WriteByte('\n')
	}
}
