package conformance

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPluginPackage: the built folder and zip are what Grafana's loader and plugin install
// conventions expect (GRAFANA_PROTOCOL.md §5).
func TestPluginPackage(t *testing.T) {
	pj := pluginJSON(t)
	for key, want := range map[string]any{
		"id": pluginID, "type": "datasource", "backend": true, "alerting": true, "metrics": true,
	} {
		if pj[key] != want {
			t.Errorf("plugin.json %s = %v, want %v", key, pj[key], want)
		}
	}
	if !regexp.MustCompile(`^[0-9a-z]+-([0-9a-z]+-)?datasource$`).MatchString(pluginID) {
		t.Errorf("id %q does not follow <org>-<name>-datasource", pluginID)
	}
	info, _ := pj["info"].(map[string]any)
	version, _ := info["version"].(string)
	if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(version) {
		t.Errorf("info.version %q is not a version (was %%VERSION%% substituted?)", version)
	}
	if updated, _ := info["updated"].(string); !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(updated) {
		t.Errorf("info.updated %q is not a date", updated)
	}
	if d, _ := info["description"].(string); d == "" {
		t.Error("info.description is empty")
	}
	if kw, _ := info["keywords"].([]any); len(kw) == 0 {
		t.Error("info.keywords is empty")
	}
	logos, _ := info["logos"].(map[string]any)
	for _, size := range []string{"small", "large"} {
		path, _ := logos[size].(string)
		if _, err := os.Stat(filepath.Join(pluginDir, path)); path == "" || err != nil {
			t.Errorf("info.logos.%s %q: %v", size, path, err)
		}
	}
	deps, _ := pj["dependencies"].(map[string]any)
	if r, _ := deps["grafanaDependency"].(string); !strings.HasPrefix(r, ">=") {
		t.Errorf("dependencies.grafanaDependency %q, want a >= range", r)
	}
	if _, ok := pj["queryOptions"].(map[string]any); !ok {
		t.Error("plugin.json has no queryOptions")
	}

	prefix, _ := pj["executable"].(string)
	for _, arch := range []string{"amd64", "arm64"} {
		st, err := os.Stat(filepath.Join(pluginDir, prefix+"_linux_"+arch))
		if err != nil || st.Mode().Perm()&0o111 == 0 {
			t.Errorf("executable %s_linux_%s: %v (mode %v)", prefix, arch, err, st.Mode())
		}
	}
	for _, f := range []string{"README.md", "provisioning/datasources/toto-forecast.yaml"} {
		if _, err := os.Stat(filepath.Join(pluginDir, f)); err != nil {
			t.Error(err)
		}
	}

	// Grafana's archive convention: <id>-<version>.<os>_<arch>.zip with one top folder named <id>.
	zr, err := zip.OpenReader(filepath.Join(pluginDir, "..", pluginID+"-"+version+".linux_amd64.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	seen := map[string]os.FileMode{}
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, pluginID+"/") {
			t.Errorf("zip entry %q is outside the %s/ folder", f.Name, pluginID)
		}
		seen[strings.TrimPrefix(f.Name, pluginID+"/")] = f.Mode()
	}
	if _, ok := seen["plugin.json"]; !ok {
		t.Error("zip has no plugin.json")
	}
	if mode, ok := seen[prefix+"_linux_amd64"]; !ok || mode.Perm()&0o111 == 0 {
		t.Errorf("zip executable %s_linux_amd64: present %v, mode %v", prefix, ok, mode)
	}
	// The zip is portable: its launcher is the sidecar one (/bin/sh, no interpreter path).
	for _, f := range zr.File {
		if f.Name != pluginID+"/"+prefix+"_linux_amd64" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(rc)
		rc.Close()
		if !strings.HasPrefix(string(text), "#!/bin/sh\n") || strings.Contains(string(text), repoRoot) {
			t.Errorf("the zip's launcher is not the portable sidecar launcher")
		}
	}
}
