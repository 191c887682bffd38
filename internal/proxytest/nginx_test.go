package proxytest

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvNginx names the nginx binary; EnvRequireNginx=1 (CI, set by
// .ci/setup.d/nginx.sh) makes a missing nginx a failure.
const (
	EnvNginx        = "JWTGATE_NGINX"
	EnvRequireNginx = "JWTGATE_REQUIRE_NGINX"
)

// nginx auth_request in front of jwtgate, with docs/examples/nginx.conf.
func TestNginxAuthRequest(t *testing.T) {
	bin := Binary(t, "nginx", EnvNginx, EnvRequireNginx, "Install it: apt-get install -y nginx (.ci/setup.d/nginx.sh does).")
	srv := startJWTGate(t)
	api := StartAPI(t)
	port := FreePort(t)
	site := Rewrite(t, Example(t, "nginx.conf"),
		"server "+ExampleJWTGate+";", "server "+srv.Addr()+";",
		"server "+ExampleAPI+";", "server "+api.Addr+";",
		"listen "+ExamplePort+";", "listen 127.0.0.1:"+port+";")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jwtgate.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	// The harness around the example: a foreground nginx whose files are
	// all in dir.
	main := `daemon off;
worker_processes 1;
pid ` + dir + `/nginx.pid;
error_log ` + dir + `/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ` + dir + `/body;
    proxy_temp_path ` + dir + `/proxy;
    fastcgi_temp_path ` + dir + `/fastcgi;
    uwsgi_temp_path ` + dir + `/uwsgi;
    scgi_temp_path ` + dir + `/scgi;
    include ` + dir + `/jwtgate.conf;
}
`
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	Start(t, "127.0.0.1:"+port, bin, "-p", dir, "-e", dir+"/error.log", "-c", conf)
	checkProxy(t, "http://127.0.0.1:"+port, api, false)
}
