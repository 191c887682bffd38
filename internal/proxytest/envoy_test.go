package proxytest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	authzfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/jwtgate/jwtgate/engine"
	"github.com/jwtgate/jwtgate/engine/enginetest"
	"github.com/jwtgate/jwtgate/server"
	"github.com/jwtgate/jwtgate/server/servertest"
)

// loadBootstrap parses an Envoy example with the published v3 API types:
// an unknown or misspelt field, a wrong type or a failed validation rule
// fails the test.
func loadBootstrap(t *testing.T, name string) *bootstrapv3.Bootstrap {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal([]byte(Example(t, name)), &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("%s does not match Envoy's v3 API: %v", name, err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &b
}

// routesAndFilter returns the example's routes and its ext_authz filter.
func routesAndFilter(t *testing.T, b *bootstrapv3.Bootstrap) ([]*routev3.Route, *authzfilter.ExtAuthz) {
	t.Helper()
	var m hcm.HttpConnectionManager
	if err := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&m); err != nil {
		t.Fatal(err)
	}
	var ea authzfilter.ExtAuthz
	for _, f := range m.GetHttpFilters() {
		if f.GetName() == "envoy.filters.http.ext_authz" {
			if err := f.GetTypedConfig().UnmarshalTo(&ea); err != nil {
				t.Fatal(err)
			}
			if err := ea.ValidateAll(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m.GetRouteConfig().GetVirtualHosts()[0].GetRoutes(), &ea
}

func TestEnvoyHTTPExample(t *testing.T) {
	_, ea := routesAndFilter(t, loadBootstrap(t, "envoy-http.yaml"))
	hs := ea.GetHttpService()
	if hs.GetPathPrefix() != "/v1/verify" || ea.GetFailureModeAllow() || ea.GetStatusOnError().GetCode() != 503 {
		t.Fatalf("ext_authz HTTP settings: %v", ea)
	}
	if hs.GetServerUri().GetUri() != "http://"+ExampleJWTGate {
		t.Fatalf("server_uri %q", hs.GetServerUri().GetUri())
	}
}

// Standing in for Envoy: the gRPC example's settings, and a Check built as
// Envoy builds it for the example's routes, against a real jwtgate.
func TestEnvoyGRPCExample(t *testing.T) {
	routes, ea := routesAndFilter(t, loadBootstrap(t, "envoy-grpc.yaml"))
	if ea.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "jwtgate_grpc" || ea.GetTransportApiVersion().String() != "V3" ||
		ea.GetFailureModeAllow() || ea.GetStatusOnError().GetCode() != 503 || ea.GetWithRequestBody() != nil {
		t.Fatalf("ext_authz gRPC settings: %v", ea)
	}
	perRoute := func(r *routev3.Route) (map[string]string, *rbacfilter.RBACPerRoute) {
		var pr authzfilter.ExtAuthzPerRoute
		if err := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"].UnmarshalTo(&pr); err != nil {
			t.Fatal(err)
		}
		var rb *rbacfilter.RBACPerRoute
		if a, ok := r.GetTypedPerFilterConfig()["envoy.filters.http.rbac"]; ok {
			rb = &rbacfilter.RBACPerRoute{}
			if err := a.UnmarshalTo(rb); err != nil {
				t.Fatal(err)
			}
		}
		return pr.GetCheckSettings().GetContextExtensions(), rb
	}
	adminExt, adminRBAC := perRoute(routes[0])
	rootExt, _ := perRoute(routes[1])
	if adminRBAC == nil {
		t.Fatal("no RBAC on the /admin route")
	}

	srv := servertest.Start(t, server.Config{Store: engine.NewMemoryStore(), AdminToken: "proxytest-admin-token-0123456789", GRPCAddr: "127.0.0.1:0"})
	priv := enginetest.Key("rsa2048-a")
	if _, err := srv.Verifier().AddKey(context.Background(), &engine.Key{KID: "k1", Project: "myapp", Public: &priv.PublicKey}); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("passthrough:///"+srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := authv3.NewAuthorizationClient(cc)
	check := func(ext map[string]string, tok string) *authv3.CheckResponse {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			ContextExtensions: ext,
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/admin/users", Host: "api.example.com",
				Headers: map[string]string{"authorization": "Bearer " + tok, ":path": "/admin/users"},
			}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	now := time.Now().Unix()
	admin := enginetest.SignRS256(priv, enginetest.Header("k1"), map[string]any{"aud": "myapp", "iat": now, "exp": now + 300, "groupRef": "admins"})
	other := enginetest.SignRS256(priv, enginetest.Header("k1"), map[string]any{"aud": "otherapp", "iat": now, "exp": now + 300})
	if r := check(rootExt, other); codes.Code(r.GetStatus().GetCode()) != codes.Unauthenticated {
		t.Fatalf("the route requires project myapp; a token for another audience got %v", r.GetStatus())
	}
	r := check(adminExt, admin)
	if codes.Code(r.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("admin token: %v", r.GetStatus())
	}
	// What the example's RBAC rule reads: metadata path claims.groupRef in
	// the ext_authz namespace.
	m := adminRBAC.GetRbac().GetRules().GetPolicies()["admins"].GetPrincipals()[0].GetMetadata()
	if m.GetFilter() != "envoy.filters.http.ext_authz" {
		t.Fatalf("RBAC reads metadata of %q", m.GetFilter())
	}
	v := r.GetDynamicMetadata()
	var got any = v.AsMap()
	for _, seg := range m.GetPath() {
		got = got.(map[string]any)[seg.GetKey()]
	}
	if got != m.GetValue().GetStringMatch().GetExact() {
		t.Fatalf("metadata at %v is %v, RBAC wants %q", m.GetPath(), got, m.GetValue().GetStringMatch().GetExact())
	}
}

func TestIstioExample(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader(Example(t, "istio.yaml")))
	var docs []map[string]any
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			break
		}
		docs = append(docs, d)
	}
	if len(docs) != 2 {
		t.Fatalf("%d documents, want the mesh config and the AuthorizationPolicy", len(docs))
	}
	prov := docs[0]["spec"].(map[string]any)["meshConfig"].(map[string]any)["extensionProviders"].([]any)[0].(map[string]any)
	g, ok := prov["envoyExtAuthzGrpc"].(map[string]any)
	if !ok || prov["name"] != "jwtgate" || g["failOpen"] != false || g["statusOnError"] != "503" || g["port"] != 9090 {
		t.Fatalf("extension provider %v", prov)
	}
	pol := docs[1]
	spec := pol["spec"].(map[string]any)
	if pol["kind"] != "AuthorizationPolicy" || spec["action"] != "CUSTOM" || spec["provider"].(map[string]any)["name"] != "jwtgate" {
		t.Fatalf("policy %v", pol)
	}
}
