package middleware_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/middleware"
	"github.com/jwtgate/jwtgate/store/pgstore"
)

// Verify tokens in-process in a net/http service: the handler sees the
// verified claims; a refused request gets the verify listener's 401.
func Example() {
	store := engine.NewMemoryStore()
	v, err := engine.New(store)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	priv := enginetest.Key("rsa2048-a") // the customer's signing key
	if _, err := v.AddKey(context.Background(), &engine.Key{KID: "k1", Project: "myapp", Public: &priv.PublicKey}); err != nil {
		log.Fatal(err)
	}

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := middleware.Claims(r.Context())
		fmt.Fprintf(w, "hello %s (project %s, key %s)", c.Subject(), c.Project, c.KID)
	})
	srv := httptest.NewServer(middleware.New(v, middleware.WithProject("myapp")).Handler(api))
	defer srv.Close()

	get := func(auth string) {
		req, _ := http.NewRequest("GET", srv.URL+"/orders", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body))
	}
	tok := enginetest.SignRS256(priv, enginetest.Header("k1"), enginetest.Claims("myapp", v.Now().Unix(), 300))
	get("Bearer " + tok)
	get("")
	// Output:
	// 200  hello user-1 (project myapp, key k1)
	// 401 Bearer realm="jwtgate" {"valid":false,"error":"missing_token","message":"no bearer token was presented"}
}

// Embed the verifier on the PostgreSQL store that jwtgate nodes share:
// engine.New subscribes it to the store's change feed, so keys added,
// deactivated or deleted through any node's admin API are in force in this
// process too, as on the nodes themselves.
func Example_postgres() {
	ctx := context.Background()
	store, err := pgstore.Open(ctx, os.Getenv("JWTGATE_STORE")) // e.g. postgres://jwtgate@db/jwtgate
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	v, err := engine.New(store)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close() // Close the verifier before the store

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := middleware.Claims(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject())
	})
	log.Fatal(http.ListenAndServe(":8000", middleware.New(v).Handler(api)))
}
