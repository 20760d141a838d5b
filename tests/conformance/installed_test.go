package conformance

// Helpers for the tests of what a user installs: the built wheel in fresh virtualenvs outside the
// repository (tests/deploy/wheel_venvs.py; run.sh exports their paths) and servers started from them.

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// venvCommand is the toto-datasource command of the venv named by env (TOTO_BASE_VENV: the wheel
// alone; TOTO_FULL_VENV: the wheel with the toto extra).
func venvCommand(t *testing.T, env string) string {
	t.Helper()
	dir := os.Getenv(env)
	if dir == "" {
		t.Fatalf("%s is not set: run the harness through tests/conformance/run.sh, which installs the built wheel", env)
	}
	return filepath.Join(dir, "bin", "toto-datasource")
}

// userEnv is a shell user's environment for running the installed command (not the checkout's).
func userEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PYTHONPATH=") {
			env = append(env, kv)
		}
	}
	return env
}

// installPlugin runs `toto-datasource install-plugin DIR args...` and returns DIR/<id>.
func installPlugin(t *testing.T, command, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(command, append([]string{"install-plugin", dir}, args...)...)
	cmd.Env, cmd.Dir = userEnv(), os.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install-plugin: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "allow_loading_unsigned_plugins = "+pluginID) {
		t.Errorf("install-plugin did not print the grafana.ini lines still needed:\n%s", out)
	}
	return filepath.Join(dir, pluginID)
}

func launcherIn(folder string) string {
	return filepath.Join(folder, fmt.Sprintf("gpx_toto_forecast_%s_%s", runtime.GOOS, runtime.GOARCH))
}

// unzipPlugin unpacks Grafana's archive into a plugins directory, as `grafana cli` and preinstall do.
func unzipPlugin(t *testing.T, archive, dir string) string {
	t.Helper()
	zr, err := zip.OpenReader(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(path, dir+string(os.PathSeparator)) {
			t.Fatalf("zip entry %q escapes the plugins directory", f.Name)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, f.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		out.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, pluginID)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// server is a process started on its own (the sidecar plugin server, an inference server).
type server struct {
	cmd *exec.Cmd
	log *syncBuffer
}

func startServer(t *testing.T, env []string, command string, args ...string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(command, args...), log: &syncBuffer{}}
	s.cmd.Env, s.cmd.Dir = env, os.TempDir()
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(command), s.log.tail())
		}
	})
	return s
}

// stop ends the server as a container runtime does: SIGTERM, SIGKILL after 10 s.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// kill ends the server at once (a crash, an OOM kill).
func (s *server) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

func (s *server) alive() bool { return s.cmd.ProcessState == nil && alive(s.cmd.Process.Pid) }

func waitListening(t *testing.T, s *server, addr string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if !s.alive() {
			t.Fatalf("server exited before listening on %s", addr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listening on %s after 3 minutes", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitModelReady polls the sidecar's /readyz until its default model is loaded.
func waitModelReady(t *testing.T, s *server, probes string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		status, body := getJSON(probes + "/readyz")
		if models, _ := body["models"].([]any); status == 200 && len(models) > 0 {
			if m, _ := models[0].(map[string]any); m["state"] == "ready" {
				return body
			}
		}
		if !s.alive() {
			t.Fatalf("server exited while loading its model")
		}
		if time.Now().After(deadline) {
			t.Fatalf("model not ready after 3 minutes: %d %v", status, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func getJSON(url string) (int, map[string]any) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// contextWith is pluginContext(true) with another data source's jsonData.
func contextWith(uid, jsonData string) *pluginv2.PluginContext {
	pc := backend.PluginContext{
		OrgID: 1, PluginID: pluginID, PluginVersion: "0.1.0",
		GrafanaConfig: backend.NewGrafanaCfg(map[string]string{"GF_APP_URL": "http://localhost:3000/"}),
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 2, UID: uid, Type: pluginID, Name: "Toto " + uid, JSONData: json.RawMessage(jsonData),
			Updated: time.UnixMilli(1_700_000_000_000),
		},
		User: &backend.User{Login: "admin", Role: "Admin"},
	}
	return backend.ToProto().PluginContext(pc)
}

func checkHealth(t *testing.T, p *pluginProcess, pc *pluginv2.PluginContext) *pluginv2.CheckHealthResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := p.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pc})
	if err != nil {
		t.Fatalf("CheckHealth: %v", err)
	}
	return resp
}

// demoQuery is one forecast of the demo source with this model.
func demoQuery(ref, model string) *pluginv2.DataQuery {
	now := time.Now()
	return query(ref, now.Add(-time.Hour), now.Add(8*time.Minute), map[string]any{
		"source": "demo", "scenario": "cpu", "horizon": 8, "quantiles": quantiles, "model": model,
	})
}

func goarch() string { return runtime.GOARCH }
