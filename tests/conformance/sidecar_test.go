package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// sidecarPlugin is Grafana's plugin folder from the portable zip (`install-plugin --zip`, run from
// the base install): the /bin/sh launcher that hands Grafana a sidecar server's address.
func sidecarPlugin(t *testing.T) string {
	t.Helper()
	zips := t.TempDir()
	cmd := venvCommand(t, "TOTO_BASE_VENV")
	installPlugin(t, cmd, zips, "--zip")
	archives, _ := filepath.Glob(filepath.Join(zips, pluginID+"-*.linux_"+goarch()+".zip"))
	if len(archives) != 1 {
		t.Fatalf("install-plugin --zip wrote %v, want one <id>-<version>.linux_%s.zip", archives, goarch())
	}
	folder := unzipPlugin(t, archives[0], t.TempDir())
	text, err := os.ReadFile(launcherIn(folder))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), "#!/bin/sh\n") || strings.Contains(string(text), "/bin/python") {
		t.Errorf("the zip's launcher is not the /bin/sh sidecar launcher without an interpreter path")
	}
	return launcherIn(folder)
}

// startSidecar starts `toto-datasource serve` from the full install on its own, configured by its
// flags alone (no GF_PLUGIN_*: Grafana does not start it), and waits for its model.
func startSidecar(t *testing.T, addr, probeAddr string) *server {
	t.Helper()
	s := startServer(t, userEnv(), venvCommand(t, "TOTO_FULL_VENV"), "serve", "--address", addr,
		"--health-address", probeAddr, "--model", modelDir, "--device", "cpu")
	waitListening(t, s, addr)
	waitModelReady(t, s, "http://"+probeAddr)
	return s
}

// TestSidecar: the plugin server runs on its own; Grafana starts the sidecar launcher, which hands
// it the server's address. The server survives Grafana's Shutdown and serves a second launcher; a
// server killed and restarted mid-run answers the next query through the same connection.
func TestSidecar(t *testing.T) {
	launcher := sidecarPlugin(t)
	addr, probeAddr := freeAddr(t), freeAddr(t)
	srv := startSidecar(t, addr, probeAddr)
	env := append(grafanaEnv(), "GF_PLUGIN_SERVER_ADDRESS="+addr) // grafana.ini: server_address

	p := launchExecutable(t, launcher, env)
	if cl := cmdline(p.pid); strings.Contains(cl, "toto_datasource") {
		t.Errorf("the sidecar launcher started a server of its own: %s", cl)
	}
	req := func() *pluginv2.QueryDataRequest {
		return &pluginv2.QueryDataRequest{PluginContext: pluginContext(true), Queries: []*pluginv2.DataQuery{demoQuery("A", "toto")}}
	}
	checkTimeSeries(t, "A", mustQuery(t, p, req()).ok(t, "A"))
	if h := checkHealth(t, p, pluginContext(true)); h.Status != pluginv2.CheckHealthResponse_OK {
		t.Errorf("CheckHealth through the sidecar launcher: %v %q", h.Status, h.Message)
	}

	// The server restarts while Grafana keeps running: the next query recovers.
	srv.kill()
	srv = startSidecar(t, addr, probeAddr)
	checkTimeSeries(t, "A", mustQuery(t, p, req()).ok(t, "A"))

	// Grafana stops the launcher (Shutdown, then SIGKILL): the shared server keeps serving.
	p.client.Kill()
	if alive(p.pid) {
		t.Errorf("the launcher (PID %d) survived Kill()", p.pid)
	}
	if !srv.alive() {
		t.Fatal("the sidecar server exited on Grafana's Shutdown")
	}
	if status, _ := getJSON("http://" + probeAddr + "/livez"); status != 200 {
		t.Errorf("/livez after Grafana's Shutdown: %d", status)
	}
	second := launchExecutable(t, launcher, env)
	defer second.client.Kill()
	checkTimeSeries(t, "A", mustQuery(t, second, req()).ok(t, "A"))
}

// TestSidecarAddressNotAnswering: a launcher whose server does not answer fails its start with a
// message naming the address and what to do, within server_wait_seconds.
func TestSidecarAddressNotAnswering(t *testing.T) {
	launcher := sidecarPlugin(t)
	addr := freeAddr(t) // nothing listens there
	started := time.Now()
	p, err := tryLaunch(launcher, append(grafanaEnv(), "GF_PLUGIN_SERVER_ADDRESS="+addr, "GF_PLUGIN_SERVER_WAIT_SECONDS=1"))
	if err == nil {
		p.client.Kill()
		t.Fatal("the launcher started although nothing answers at its address")
	}
	if !strings.Contains(err.Error(), "no plugin server answers at "+addr) || !strings.Contains(err.Error(), "toto-datasource serve") {
		t.Errorf("start error does not say what is wrong: %v", err)
	}
	if elapsed := time.Since(started); elapsed > 30*time.Second {
		t.Errorf("the launcher took %v to give up", elapsed)
	}
}
