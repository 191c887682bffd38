package server

import (
	"math/rand/v2"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fullCheckRequest is a CheckRequest with everything Envoy may send.
func fullCheckRequest(headers map[string]string, raw [][2]string, ext map[string]string, path string) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{
		Id: "123", Method: "POST", Headers: headers, Path: path, Host: "api.example", Scheme: "https",
		Protocol: "HTTP/2", Size: 42, Body: "ignored", RawBody: []byte("ignored"),
	}
	if raw != nil {
		h.HeaderMap = &corev3.HeaderMap{}
		for _, kv := range raw {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
		}
	}
	md, _ := structpb.NewStruct(map[string]any{"a": 1.0, "b": []any{"x"}})
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:            &authv3.AttributeContext_Peer{Principal: "spiffe://x", Labels: map[string]string{"app": "a"}},
		Destination:       &authv3.AttributeContext_Peer{Service: "orders"},
		Request:           &authv3.AttributeContext_Request{Time: timestamppb.Now(), Http: h},
		ContextExtensions: ext,
		MetadataContext:   &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": md}},
	}}
}

// What Check reads is the same after decodeCheckRequest as after the
// generic protobuf decoder.
func TestDecodeCheckRequestMatchesProto(t *testing.T) {
	cases := []*authv3.CheckRequest{
		{},
		fullCheckRequest(nil, nil, nil, ""),
		fullCheckRequest(map[string]string{"authorization": "Bearer a.b.c", "x-other": "1", "x-jwtgate-project": "p1"}, nil, map[string]string{"project": "p2", "other": "x"}, "/v1/x?project=p3&y=1"),
		fullCheckRequest(map[string]string{"authorization": ""}, nil, map[string]string{"project": ""}, "/"),
		fullCheckRequest(nil, [][2]string{{":path", "/"}, {"authorization", "Bearer x"}, {"Authorization", "Bearer y"}, {"x-jwtgate-project", "p"}}, nil, "/"),
		fullCheckRequest(nil, [][2]string{{"authorization", "Bearer z"}}, nil, "/?project=a&project=b"),
	}
	for i, want := range cases {
		b, err := proto.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var full, fast authv3.CheckRequest
		if err := proto.Unmarshal(b, &full); err != nil {
			t.Fatal(err)
		}
		if err := decodeCheckRequest(b, &fast); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		sameView(t, i, &full, &fast)
	}
}

func sameView(t *testing.T, i int, full, fast *authv3.CheckRequest) {
	t.Helper()
	for _, maxBytes := range []int{8192, 3} {
		ft, fc := checkToken(full.GetAttributes().GetRequest().GetHttp(), maxBytes)
		st, sc := checkToken(fast.GetAttributes().GetRequest().GetHttp(), maxBytes)
		if string(ft) != string(st) || fc != sc {
			t.Fatalf("case %d: token %q %v, fast decoder %q %v", i, ft, fc, st, sc)
		}
	}
	fp, fa, fo := checkProject(full.GetAttributes().GetContextExtensions(), full.GetAttributes().GetRequest().GetHttp())
	sp, sa, so := checkProject(fast.GetAttributes().GetContextExtensions(), fast.GetAttributes().GetRequest().GetHttp())
	if string(fp) != string(sp) || fa != sa || fo != so {
		t.Fatalf("case %d: project %q %v %v, fast decoder %q %v %v", i, fp, fa, fo, sp, sa, so)
	}
}

// Corrupted and truncated requests are refused or read alike; never a
// panic.
func TestDecodeCheckRequestCorrupt(t *testing.T) {
	base, _ := proto.Marshal(fullCheckRequest(map[string]string{"authorization": "Bearer a.b.c"}, [][2]string{{"authorization", "Bearer q"}}, map[string]string{"project": "p"}, "/?project=p"))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		b := append([]byte(nil), base...)
		switch i % 3 {
		case 0:
			b = b[:r.IntN(len(b))]
		default:
			for range 1 + r.IntN(4) {
				b[r.IntN(len(b))] = byte(r.IntN(256))
			}
		}
		var full, fast authv3.CheckRequest
		ferr := proto.Unmarshal(b, &full)
		serr := decodeCheckRequest(b, &fast)
		if ferr == nil && serr != nil {
			t.Fatalf("input %d: the generic decoder accepts it, the fast one says %v", i, serr)
		}
		if ferr == nil && serr == nil {
			sameView(t, i, &full, &fast)
		}
	}
}
