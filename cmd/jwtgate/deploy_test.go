package main

// Tests of the deployment files (README "Deploying"): what can be checked
// without a Docker engine or systemd. The compose file parses and has
// PostgreSQL and two nodes sharing it; every command line in the
// Dockerfile, the compose file and the systemd unit parses with the real
// serve flags; the Dockerfile builds with the Makefile's build-static
// target on a non-root distroless/scratch image; and that target makes a
// static binary (no dynamic loader).

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const repoRoot = "../.."

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkServeArgs parses a "serve ..." command line with the real flags.
func checkServeArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: command %q does not start with serve", where, args)
	}
	var f serveFlags
	fs := serveFlagSet(&f, io.Discard)
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		t.Fatalf("%s: %q does not parse with jwtgate serve's flags: %v %q", where, args, err, fs.Args())
	}
}

func TestDeployComposeFile(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
			DependsOn   map[string]any    `yaml:"depends_on"`
			Healthcheck map[string]any    `yaml:"healthcheck"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &compose); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	pg, ok := compose.Services["postgres"]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:") || pg.Healthcheck == nil {
		t.Fatalf("no postgres service with a health check: %+v", pg)
	}
	var nodes []string
	hostPorts := map[string]string{}
	tokens := map[string]bool{}
	for name, s := range compose.Services {
		if name == "postgres" {
			continue
		}
		nodes = append(nodes, name)
		if s.Build != "." {
			t.Errorf("%s: build %v, want the repository's Dockerfile (.)", name, s.Build)
		}
		checkServeArgs(t, "docker-compose.yml "+name, s.Command)
		store := s.Environment["JWTGATE_STORE"]
		if !strings.HasPrefix(store, "postgres://") || !strings.Contains(store, "@postgres:5432/") {
			t.Errorf("%s: JWTGATE_STORE %q does not point at the postgres service", name, store)
		}
		tokens[s.Environment["JWTGATE_ADMIN_TOKEN"]] = true
		if _, ok := s.DependsOn["postgres"]; !ok {
			t.Errorf("%s does not depend on postgres", name)
		}
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			container := parts[len(parts)-1]
			host := strings.Join(parts[:len(parts)-1], ":")
			if other, dup := hostPorts[host]; dup {
				t.Errorf("%s and %s publish the same host port %s", name, other, host)
			}
			hostPorts[host] = name
			if container == "8081" && !strings.HasPrefix(host, "127.0.0.1:") {
				t.Errorf("%s publishes its admin listener on %q, not on loopback", name, host)
			}
		}
	}
	if len(nodes) != 2 {
		t.Errorf("jwtgate nodes %v, want two", nodes)
	}
	if len(tokens) != 1 || tokens[""] {
		t.Errorf("the nodes must share one admin token: %v", tokens)
	}
}

func TestDeployDockerfile(t *testing.T) {
	df := readRepoFile(t, "Dockerfile")
	var froms, users []string
	var cmd []string
	built := false
	sc := bufio.NewScanner(strings.NewReader(df))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "FROM "):
			froms = append(froms, strings.Fields(line)[1])
		case strings.HasPrefix(line, "RUN ") && strings.Contains(line, "make build-static"):
			built = true
		case strings.HasPrefix(line, "USER "):
			users = append(users, strings.Fields(line)[1])
		case strings.HasPrefix(line, "CMD "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "CMD ")), &cmd); err != nil {
				t.Fatalf("CMD is not an exec-form JSON array: %v", err)
			}
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(froms))
	}
	if !built {
		t.Error("the Dockerfile does not build with the Makefile's build-static target")
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final image %s, want distroless static or scratch", final)
	}
	if len(users) == 0 || users[len(users)-1] == "0" || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("the final image runs as %v, want a non-root user", users)
	}
	// The builder's Go is the one go.mod asks for.
	goMod := readRepoFile(t, "go.mod")
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
	if m == nil || !strings.HasPrefix(froms[0], "golang:"+m[1]) {
		t.Errorf("builder image %s, want golang:%s (go.mod)", froms[0], m)
	}
	checkServeArgs(t, "Dockerfile CMD", cmd)
}

func TestDeploySystemdUnit(t *testing.T) {
	unit := readRepoFile(t, "deploy/jwtgate.service")
	keys := map[string]string{}
	section := ""
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			section = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("unit line %q is not key=value", line)
		}
		keys[section+k] = v
	}
	exec := strings.Fields(keys["[Service]ExecStart"])
	if len(exec) < 2 || exec[0] != "/usr/local/bin/jwtgate" {
		t.Fatalf("ExecStart %q", keys["[Service]ExecStart"])
	}
	checkServeArgs(t, "deploy/jwtgate.service ExecStart", exec[1:])
	for k, want := range map[string]string{
		"[Service]DynamicUser": "yes", "[Service]StateDirectory": "jwtgate", "[Service]NoNewPrivileges": "yes",
		"[Service]ProtectSystem": "strict", "[Service]KillSignal": "SIGTERM", "[Install]WantedBy": "multi-user.target",
	} {
		if keys[k] != want {
			t.Errorf("%s = %q, want %q", k, keys[k], want)
		}
	}
	if !strings.Contains(keys["[Service]ExecStart"], "--data-dir /var/lib/jwtgate") {
		t.Error("ExecStart does not keep its data in the state directory /var/lib/jwtgate")
	}
}

// The Makefile's build-static target (the Dockerfile's) makes a static
// binary: no PT_INTERP (dynamic loader) and no dynamic section.
func TestBuildStaticBinaryIsStatic(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed to build with the Makefile's target: ", err)
	}
	out := t.TempDir()
	cmd := exec.Command("make", "-s", "build-static", "BIN="+out)
	cmd.Dir = repoRoot
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		t.Fatalf("make build-static: %v\n%s", err, log.String())
	}
	f, err := elf.Open(filepath.Join(out, "jwtgate"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is not static", p.Type)
		}
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		t.Error("the binary has a .dynamic or .interp section: it is not static")
	}
	libs, _ := f.ImportedLibraries()
	if len(libs) > 0 {
		t.Errorf("the binary imports shared libraries %v", libs)
	}
}
