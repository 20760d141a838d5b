package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

const standinToken = "conformance-standin-token"

// startStandin runs the Go stand-in for Grafana's /api/ds/query (tests/grafana_standin), built by
// run.sh into TOTO_STANDIN_BIN, and returns its base URL.
func startStandin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("TOTO_STANDIN_BIN")
	if bin == "" {
		t.Fatal("TOTO_STANDIN_BIN is not set: run the harness through tests/conformance/run.sh, which builds the stand-in")
	}
	cmd := exec.Command(bin, "-token", standinToken)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the Grafana stand-in: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		t.Fatalf("the Grafana stand-in did not print its URL: %q %v", line, err)
	}
	return strings.TrimSpace(line)
}

// idToken asks the stand-in for an ID token signed as Grafana signs a signed-in user's.
func idToken(t *testing.T, standin, subject, role string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"subject": subject, "role": role})
	resp, err := http.Post(standin+"/standin/id-token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("the stand-in signed no ID token: %v", err)
	}
	return out.Token
}

// TestQueryGrafanaSource: source "grafana" as Grafana sends it (GF_APP_URL in the plugin context,
// the decrypted service-account token), for a dashboard (a signed-in user's ID token in the SDK's
// X-Grafana-Id header, the user allowed on the target) and an alert evaluation (no user: the
// target is among the data source's allowedTargets): the stand-in's two ramps keep their labels
// and values on the grid, and the threshold is numeric-wide per series. A user without the
// permission gets that query's 403.
func TestQueryGrafanaSource(t *testing.T) {
	p := sharedPlugin(t)
	url := startStandin(t)
	pc := backend.PluginContext{
		OrgID: 1, PluginID: pluginID, PluginVersion: "0.1.0",
		GrafanaConfig: backend.NewGrafanaCfg(map[string]string{"GF_APP_URL": url + "/"}),
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 2, UID: "toto-grafana", Type: pluginID, Name: "Toto Forecast (Grafana API)",
			JSONData:                json.RawMessage(`{"allowedTargets":["standin"]}`),
			DecryptedSecureJSONData: map[string]string{"grafanaToken": standinToken},
			Updated:                 time.UnixMilli(1_700_000_000_000),
		},
	}
	end := time.UnixMilli(1_700_000_040_000) // a past minute mark: the history ends there
	from := end.Add(-3 * time.Hour)
	target := map[string]any{
		"source": "grafana", "sourceDatasource": map[string]string{"uid": "standin", "type": "toto-standin"},
		"sourceQuery": map[string]any{"scenario": "multi"}, "model": "seasonal-naive",
		"step": "1m", "contextLength": 64, "horizon": "5m",
	}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range target {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, alert := range []bool{false, true} {
		headers := map[string]string{}
		if alert {
			headers[backend.FromAlertHeaderName] = "true"
		} else { // the SDK forwards HTTP headers with an http_ prefix
			headers["http_"+backend.GrafanaUserSignInTokenHeaderName] = idToken(t, url, "user:u-alice", "Viewer")
		}
		req := &pluginv2.QueryDataRequest{
			PluginContext: backend.ToProto().PluginContext(pc),
			Headers:       headers,
			Queries: []*pluginv2.DataQuery{
				query("A", from, end, with(map[string]any{"includeHistory": true})),
				query("T", from, end, with(map[string]any{"queryType": "threshold", "threshold": 66.5, "direction": "above"})),
				query("R", from, end, with(map[string]any{"sourceDatasource": map[string]string{"uid": "x", "type": pluginID}})),
			},
		}
		r := mustQuery(t, p, req)
		a := r.ok(t, "A")
		checkTimeSeries(t, "A", a)
		seen := map[string]bool{}
		for _, f := range a {
			v := valueFields(f)[0]
			seen[v.Labels["series"]] = true
			if isForecast(f) || alert {
				continue
			}
			// History: series s has s*1000 + k at the k-th minute of the 64-minute window.
			base := map[string]float64{"s0": 0, "s1": 1000}[v.Labels["series"]]
			if v.Len() != 64 || toFloat(v.At(0)) != base || toFloat(v.At(63)) != base+63 {
				t.Errorf("A %q: history %d points from %v to %v, want 64 from %v", f.Name, v.Len(), v.At(0), v.At(v.Len()-1), base)
			}
			if last := f.Fields[f.TypeIndices(data.FieldTypeTime)[0]].At(63).(time.Time); !last.Equal(end) {
				t.Errorf("A %q: history ends %v, want %v", f.Name, last, end)
			}
		}
		if !seen["s0"] || !seen["s1"] {
			t.Errorf("A (alert %v): series labels %v, want s0 and s1", alert, seen)
		}
		want := []string{"time_to_breach"}
		if !alert {
			want = append(want, "breach_probability", "forecast_peak")
		}
		checkNumeric(t, "T", r.ok(t, "T"), want...)
		r.failed(t, "R", "sourcedatasource") // failed() compares lower-cased
		if strings.Contains(p.log.tail(), standinToken) {
			t.Errorf("the plugin logged the service-account token")
		}
	}
	bob := idToken(t, url, "user:u-bob", "Viewer") // a member without datasources:query on the target
	req := &pluginv2.QueryDataRequest{
		PluginContext: backend.ToProto().PluginContext(pc),
		Headers:       map[string]string{"http_" + backend.GrafanaUserSignInTokenHeaderName: bob},
		Queries: []*pluginv2.DataQuery{
			query("A", from, end, target),
			query("I", from, end, map[string]any{"source": "demo", "model": "seasonal-naive", "horizon": "5m"}),
		},
	}
	r := mustQuery(t, p, req)
	r.failed(t, "A", "you may not query data source standin")
	checkTimeSeries(t, "I", r.ok(t, "I"))
	if resp := r.raw.Responses["A"]; resp.Status != 403 {
		t.Errorf("A: status %d, want 403", resp.Status)
	}
	if strings.Contains(p.log.tail(), bob) {
		t.Errorf("the plugin logged an ID token")
	}
}
