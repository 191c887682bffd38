package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// `jwtgate serve --grpc-addr` (here through its environment variable)
// serves ext_authz and gRPC health; SIGTERM stops it cleanly.
func TestServeGRPCListener(t *testing.T) {
	c := startChild(t, t.TempDir(), []string{"JWTGATE_GRPC_ADDR=127.0.0.1:0"})
	if c.grpc == "" {
		t.Fatalf("no grpc_addr in the start-up log:\n%s", c.logs())
	}
	cc, err := grpc.NewClient("passthrough:///"+c.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	resp, err := authv3.NewAuthorizationClient(cc).Check(ctx, &authv3.CheckRequest{})
	if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.Unauthenticated ||
		resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Fatalf("Check without a token: %v %v", resp, err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, c.logs())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// Without --grpc-addr there is no gRPC listener.
func TestServeGRPCOffByDefault(t *testing.T) {
	c := startChild(t, t.TempDir(), nil)
	if c.grpc != "" {
		t.Fatalf("grpc_addr %q logged without --grpc-addr", c.grpc)
	}
}
