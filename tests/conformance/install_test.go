package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// Grafana's minimal environment for a plugin with no admin settings at all.
var bareGrafanaEnv = []string{"GF_VERSION=12.4.0", "GF_EDITION=Open Source"}

// TestWheelFullInstall: pip install of the wheel with the toto extra (layered on the project's
// torch), `toto-datasource install-plugin DIR`, and Grafana starts the launcher it wrote with no
// PATH and no HOME: the launcher execs the venv's interpreter and Toto answers.
func TestWheelFullInstall(t *testing.T) {
	command := venvCommand(t, "TOTO_FULL_VENV")
	folder := installPlugin(t, command, t.TempDir())
	launcher := launcherIn(folder)
	if text, _ := os.ReadFile(launcher); !strings.Contains(string(text), filepath.Join(os.Getenv("TOTO_FULL_VENV"), "bin", "python")) {
		t.Errorf("the launcher does not exec the venv's interpreter:\n%s", text)
	}
	if _, err := os.Stat(filepath.Join(folder, "module.js")); err != nil {
		t.Errorf("the installed folder has no frontend: %v", err)
	}
	p := launchExecutable(t, launcher, grafanaEnv())
	defer p.client.Kill()
	if cl := cmdline(p.pid); !strings.Contains(cl, os.Getenv("TOTO_FULL_VENV")) {
		t.Errorf("the plugin process is %q, not the venv's interpreter", cl)
	}
	waitHealthy(t, p)
	r := mustQuery(t, p, &pluginv2.QueryDataRequest{PluginContext: pluginContext(true), Queries: []*pluginv2.DataQuery{
		demoQuery("A", "toto"),
	}})
	checkTimeSeries(t, "A", r.ok(t, "A"))
	// Installing again upgrades the folder in place.
	installPlugin(t, command, filepath.Dir(folder))
}

// TestWheelBaseInstall: the wheel alone (no torch, no toto2). Statistical and inference-server queries
// answer; model toto without an inference server is a 400 naming both fixes, in queries and in
// CheckHealth, and the process stays up.
func TestWheelBaseInstall(t *testing.T) {
	base := venvCommand(t, "TOTO_BASE_VENV")
	folder := installPlugin(t, base, t.TempDir())
	p := launchExecutable(t, launcherIn(folder), bareGrafanaEnv)
	defer p.client.Kill()

	fixes := []string{"toto-forecast-datasource[toto]", "inferenceUrl"}
	health := checkHealth(t, p, pluginContext(true))
	for _, word := range fixes {
		if !strings.Contains(health.Message, word) {
			t.Errorf("CheckHealth %v %q does not name %q", health.Status, health.Message, word)
		}
	}
	r := mustQuery(t, p, &pluginv2.QueryDataRequest{PluginContext: pluginContext(true), Queries: []*pluginv2.DataQuery{
		demoQuery("S", "statistical"), demoQuery("N", "seasonal-naive"), demoQuery("T", "toto"),
	}})
	checkTimeSeries(t, "S", r.ok(t, "S"))
	checkTimeSeries(t, "N", r.ok(t, "N"))
	if dr := r.raw.Responses["T"]; dr == nil || dr.Status != 400 || !strings.Contains(dr.Error, fixes[0]) || !strings.Contains(dr.Error, fixes[1]) {
		t.Errorf("model toto on the base install: %v, want a 400 naming %v", dr, fixes)
	}

	// The same data source pointed at an inference server (serve-model from the full install).
	engineAddr := freeAddr(t)
	engine := startServer(t, userEnv(), venvCommand(t, "TOTO_FULL_VENV"), "serve-model",
		"--checkpoint", modelDir, "--device", "cpu", "--address", engineAddr)
	waitListening(t, engine, engineAddr)
	remote := contextWith("remote", `{"inferenceUrl":"`+engineAddr+`"}`)
	deadline := time.Now().Add(time.Minute) // the remote runtime connects in the background
	h := checkHealth(t, p, remote)
	for h.Status != pluginv2.CheckHealthResponse_OK && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		h = checkHealth(t, p, remote)
	}
	if h.Status != pluginv2.CheckHealthResponse_OK || !strings.Contains(h.Message, engineAddr) {
		t.Errorf("CheckHealth of the remote data source: %v %q", h.Status, h.Message)
	}
	r = mustQuery(t, p, &pluginv2.QueryDataRequest{PluginContext: remote, Queries: []*pluginv2.DataQuery{
		demoQuery("R", "toto"),
	}})
	checkTimeSeries(t, "R", r.ok(t, "R"))
	if p.client.Exited() {
		t.Fatal("the base plugin exited")
	}
}
