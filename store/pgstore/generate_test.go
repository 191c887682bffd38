package pgstore_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/internal/apitest"
	"github.com/jwtgate/jwtgate/internal/customersample"
	"github.com/jwtgate/jwtgate/internal/pgtest"
)

// TestGeneratedKeyPairFlowTwoNodes: the "download the private key once"
// flow on PostgreSQL with two nodes. A pair generated on A signs, with the
// customer's own library and calls (jwx v2), tokens that verify on both
// nodes; rotation (a second pair generated on B, both verify, the first
// deleted on A) holds on both; and no table of the database holds any form
// of either private key.
func TestGeneratedKeyPairFlowTwoNodes(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := startNode(t, dsn, "a"), startNode(t, dsn, "b")
	sign := func(g apitest.GeneratedKey) string {
		t.Helper()
		return customersample.SignDownloaded(t, g.PrivatePEM, g.KID, "acme")
	}
	first := apitest.Generate(t, a.admin, adminToken, "acme", map[string]any{"label": "first"})
	tok1 := sign(first)
	a.eventually(tok1, "ok", propagationBound)
	b.eventually(tok1, "ok", propagationBound)

	second := apitest.Generate(t, b.admin, adminToken, "acme", nil)
	tok2 := sign(second)
	for _, n := range []*node{a, b} {
		n.eventually(tok2, "ok", propagationBound)
		if c := n.code(tok1); c != "ok" {
			t.Fatalf("%s: first key during rotation: %s", n.name, c)
		}
	}
	if r := a.adminDo("DELETE", "/v1/projects/acme/keys/"+first.KID+"?force=true", nil); r.Status != 204 {
		t.Fatalf("delete the first key: %d %s", r.Status, r.Body)
	}
	for _, n := range []*node{a, b} {
		n.eventually(tok1, "unknown_kid", propagationBound)
		if c := n.code(tok2); c != "ok" {
			t.Fatalf("%s: second key after the rotation: %s", n.name, c)
		}
	}

	// Every table of the schema, as text (bytea in hex), holds no form of
	// either private key; the same search finds the second public key.
	ctx := context.Background()
	rows, err := a.st.Pool().Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var dump strings.Builder
	for _, tbl := range tables {
		var text *string
		q := `SELECT string_agg(t::text, E'\n') FROM "` + strings.ReplaceAll(tbl, `"`, `""`) + `" AS t`
		if err := a.st.Pool().QueryRow(ctx, q).Scan(&text); err != nil {
			t.Fatalf("read %s: %v", tbl, err)
		}
		if text != nil {
			dump.WriteString(*text + "\n")
		}
	}
	if !strings.Contains(strings.Join(tables, " "), "jwtgate_keys") {
		t.Fatalf("tables searched: %v", tables)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&second.Private.PublicKey)
	if !strings.Contains(dump.String(), hex.EncodeToString(spki)) {
		t.Fatal("the tables do not hold the second public key as searched: the search proves nothing")
	}
	for _, g := range []apitest.GeneratedKey{first, second} {
		forms := apitest.PrivateKeyMaterial(t, g.Private, g.PrivatePEM)
		if found := apitest.FindMaterial([]byte(dump.String()), forms); len(found) > 0 {
			t.Errorf("the database (tables %v) holds private key material of %s: %v", tables, g.KID, found)
		}
		if strings.Contains(dump.String(), "PRIVATE KEY") {
			t.Error("the database holds a PEM private key")
		}
	}
}
