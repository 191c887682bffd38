package engine_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jwtgate/jwtgate/engine"
	et "github.com/jwtgate/jwtgate/engine/enginetest"
)

// A project registers its public key, signs a token on its own server, and
// the verifier checks it.
func Example() {
	store := engine.NewMemoryStore()
	v, err := engine.New(store, engine.WithLeeway(30*time.Second), engine.WithMaxTTL(10*time.Minute))
	if err != nil {
		panic(err)
	}
	priv := et.Key("rsa2048-a") // the customer's private key
	key, err := v.AddKey(context.Background(), &engine.Key{KID: "k1", Project: "myapp", Public: &priv.PublicKey, Label: "prod"})
	if err != nil {
		panic(err)
	}
	fmt.Println("registered", key.KID, "for", key.Project, key.Bits(), "bits")

	now := time.Now().Unix()
	token := et.SignRS256(priv, et.Header("k1"), map[string]any{
		"aud": []string{"myapp"}, "iat": now, "exp": now + 300, "sub": "alice", "groupRef": "g-42",
	})

	c := engine.AcquireClaims()
	defer engine.ReleaseClaims(c)
	if err := v.VerifyInto([]byte(token), c); err != nil {
		panic(err)
	}
	group, _ := c.String("groupRef")
	fmt.Printf("valid: project=%s kid=%s sub=%s groupRef=%s\n", c.Project, c.KID, c.Subject(), group)

	// Deactivating the key takes effect before UpdateKey returns.
	inactive := engine.StatusInactive
	if _, err := v.UpdateKey(context.Background(), "myapp", "k1", engine.KeyUpdate{Status: &inactive}); err != nil {
		panic(err)
	}
	err = v.VerifyInto([]byte(token), c)
	fmt.Println("after deactivation:", engine.CodeOf(err), errors.Is(err, engine.ErrKeyInactive))
	// Output:
	// registered k1 for myapp 2048 bits
	// valid: project=myapp kid=k1 sub=alice groupRef=g-42
	// after deactivation: key_inactive true
}
