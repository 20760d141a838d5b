package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var quantiles = []float64{0.1, 0.5, 0.9}

// TestHandshakeAndHealth: go-plugin's handshake succeeded (launch), the PID Grafana holds is the
// Python server itself (the launcher exec'd), the child saw none of the host's environment, and
// CheckHealth answers OK, also without data-source settings.
func TestHandshakeAndHealth(t *testing.T) {
	p := sharedPlugin(t)
	if cl := cmdline(p.pid); !strings.Contains(cl, "toto_datasource") {
		t.Errorf("PID %d runs %q; the launcher must exec the Python server", p.pid, cl)
	}
	environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.pid))
	for _, kv := range strings.Split(string(environ), "\x00") {
		if strings.HasPrefix(kv, "CONFORMANCE_HOST_ONLY=") {
			t.Errorf("the plugin inherited the host environment (%s); Grafana >= 12.4 skips it", kv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := p.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pluginContext(true)})
	if err != nil || resp.Status != pluginv2.CheckHealthResponse_OK || resp.Message == "" {
		t.Errorf("CheckHealth: %v %v", resp, err)
	}
	if len(resp.GetJsonDetails()) > 0 && !json.Valid(resp.JsonDetails) {
		t.Errorf("CheckHealth jsonDetails is not JSON: %q", resp.JsonDetails)
	}
	// go-plugin parses each stderr line as hclog JSON (§1.5); a line it could not parse (say, a
	// @timestamp without 6 fractional digits) is logged raw at DEBUG.
	for _, line := range strings.Split(p.log.tail(), "\n") {
		if strings.Contains(line, ".gpx_toto_forecast") && strings.Contains(line, `{"@`) {
			t.Errorf("stderr line not understood as hclog JSON: %s", line)
		}
	}
	bare := &pluginv2.CheckHealthRequest{PluginContext: &pluginv2.PluginContext{OrgId: 1, PluginId: pluginID}}
	if resp, err := p.diag.CheckHealth(ctx, bare); err != nil {
		cleanStatus(t, err)
	} else if resp.Status == pluginv2.CheckHealthResponse_UNKNOWN {
		t.Errorf("CheckHealth without settings: status UNKNOWN (%q)", resp.Message)
	}
}

// TestQueryDashboard: a panel's request with several refIds (demo forecast with history, inline
// series with labels, a threshold query) and one invalid query.
func TestQueryDashboard(t *testing.T) {
	p := sharedPlugin(t)
	now := time.Now().Truncate(time.Minute)
	from, to := now.Add(-6*time.Hour), now.Add(time.Hour)
	step := time.Minute
	inline := []any{
		inlineSeries("db_qps", map[string]string{"host": "a"}, now, step, 256),
		inlineSeries("db_qps", map[string]string{"host": "b"}, now, step, 256),
	}
	req := &pluginv2.QueryDataRequest{
		PluginContext: pluginContext(true),
		Headers: map[string]string{
			"X-Dashboard-Uid": "forecasts", "X-Panel-Id": "2", "X-Datasource-Uid": "toto", "X-Plugin-Id": pluginID,
		},
		Queries: []*pluginv2.DataQuery{
			query("A", from, to, map[string]any{"queryType": "forecast", "source": "demo", "scenario": "postgres-load",
				"horizon": "1h", "quantiles": quantiles, "includeHistory": true}),
			query("B", from, to, map[string]any{"queryType": "forecast", "source": "inline", "series": inline,
				"horizon": 30, "quantiles": quantiles, "includeHistory": false}),
			query("C", from, to, map[string]any{"queryType": "threshold", "source": "demo", "scenario": "postgres-load",
				"threshold": 500, "direction": "above", "horizon": "15m"}),
			query("D", from, to, map[string]any{"queryType": "forecast", "source": "demo", "horizon": -5}),
		},
	}
	r := mustQuery(t, p, req)

	a := r.ok(t, "A")
	checkTimeSeries(t, "A", a)
	var forecasts, history int
	for _, f := range a {
		if isForecast(f) {
			forecasts++
			checkForecastFrame(t, "A", f, quantiles)
		} else {
			history++
		}
	}
	if forecasts == 0 || history == 0 {
		t.Errorf("A: %d forecast and %d history frames, want both (includeHistory)", forecasts, history)
	}

	b := r.ok(t, "B")
	checkTimeSeries(t, "B", b)
	hosts := map[string]bool{}
	for _, f := range b {
		if !isForecast(f) {
			t.Errorf("B: frame %q is not a forecast (includeHistory false)", f.Name)
			continue
		}
		checkForecastFrame(t, "B", f, quantiles)
		v := valueFields(f)[0]
		hosts[v.Labels["host"]] = true
		// The forecast continues the source step: first point = last history point + step.
		tf := f.Fields[f.TypeIndices(data.FieldTypeTime)[0]]
		if first := tf.At(0).(time.Time); !first.Equal(now.Add(step)) {
			t.Errorf("B %v: first forecast at %v, want %v (last point + step)", v.Labels, first, now.Add(step))
		}
		if tf.Len() != 30 {
			t.Errorf("B %v: %d forecast points, want horizon 30", v.Labels, tf.Len())
		}
	}
	if !hosts["a"] || !hosts["b"] {
		t.Errorf("B: forecast labels %v, want host a and host b", hosts)
	}

	checkNumeric(t, "C", r.ok(t, "C"), "time_to_breach", "breach_probability", "forecast_peak")
	r.failed(t, "D", "horizon")
	checkJSON(t, r)
}

// TestQueryAlert: what alert evaluation sends: the FromAlert header, no user, the rule's
// relative range (now-1h to now) resolved to absolute times, Grafana's alert query defaults.
func TestQueryAlert(t *testing.T) {
	p := sharedPlugin(t)
	// The rule's relativeTimeRange {from: 3600, to: 0} (seconds before now), resolved at evaluation.
	rel := struct{ From, To time.Duration }{3600 * time.Second, 0}
	now := time.Now()
	from, to := now.Add(-rel.From), now.Add(-rel.To)
	alertQuery := func(ref string, model map[string]any) *pluginv2.DataQuery {
		model["intervalMs"], model["maxDataPoints"] = 1000, 43200
		return query(ref, from, to, model)
	}
	req := &pluginv2.QueryDataRequest{
		PluginContext: pluginContext(false),
		Headers: map[string]string{
			backend.FromAlertHeaderName: "true", "X-Cache-Skip": "true",
			"X-Rule-Uid": "forecast-rule", "X-Grafana-Org-Id": "1",
		},
		Queries: []*pluginv2.DataQuery{
			alertQuery("A", map[string]any{"queryType": "forecast", "source": "demo", "scenario": "all",
				"horizon": "15m", "step": "1m", "quantiles": quantiles, "includeHistory": true}),
			alertQuery("B", map[string]any{"queryType": "threshold", "source": "demo", "scenario": "postgres-load",
				"threshold": 500, "direction": "above", "horizon": "15m", "step": "1m"}),
		},
	}
	r := mustQuery(t, p, req)

	a := r.ok(t, "A")
	c := checkTimeSeries(t, "A", a)
	checkUniqueLabels(t, "A", a)
	for _, f := range a {
		if n := len(valueFields(f)); n != 1 {
			t.Errorf("A: alert frame %q has %d value fields, want only the median", f.Name, n)
		}
	}
	if len(c.Refs) < 2 {
		t.Errorf("A: %d series for scenario all, want several (one alert instance each)", len(c.Refs))
	}

	b := r.ok(t, "B")
	checkNumeric(t, "B", b, "time_to_breach")
	checkUniqueLabels(t, "B", b)
	checkJSON(t, r)
}

// TestCallResource: GET health and models answer JSON; an unknown path is a 404, not a crash.
func TestCallResource(t *testing.T) {
	p := sharedPlugin(t)
	call := func(method, path string) (int, []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req := backend.ToProto().CallResourceRequest(&backend.CallResourceRequest{
			PluginContext: backend.PluginContext{OrgID: 1, PluginID: pluginID},
			Path:          path, Method: method, URL: path + "?x=1",
			Headers: map[string][]string{"Accept": {"application/json"}},
		})
		req.PluginContext = pluginContext(true)
		stream, err := p.res.CallResource(ctx, req)
		if err != nil {
			t.Fatalf("CallResource %s: %v", path, err)
		}
		var code int
		var body bytes.Buffer
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("CallResource %s: %v", path, err)
			}
			if code == 0 {
				code = int(msg.Code)
			}
			body.Write(msg.Body)
		}
		return code, body.Bytes()
	}
	for _, path := range []string{"health", "models"} {
		code, body := call("GET", path)
		if code != 200 || !json.Valid(body) {
			t.Errorf("GET %s: %d %q, want 200 and JSON", path, code, body)
		}
	}
	if code, body := call("GET", "no-such-route"); code != 404 {
		t.Errorf("GET no-such-route: %d %q, want 404", code, body)
	}
}

// TestCollectMetrics: the Prometheus text parses and counts the queries answered so far.
func TestCollectMetrics(t *testing.T) {
	p := sharedPlugin(t)
	now := time.Now()
	mustQuery(t, p, &pluginv2.QueryDataRequest{PluginContext: pluginContext(true), Queries: []*pluginv2.DataQuery{
		query("A", now.Add(-time.Hour), now, map[string]any{"source": "demo", "scenario": "cpu", "horizon": 16}),
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := p.diag.CollectMetrics(ctx, &pluginv2.CollectMetricsRequest{PluginContext: pluginContext(true)})
	if err != nil {
		t.Fatalf("CollectMetrics: %v", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(resp.GetMetrics().GetPrometheus()))
	if err != nil {
		t.Fatalf("Prometheus text: %v\n%s", err, resp.GetMetrics().GetPrometheus())
	}
	var answered float64
	for name, mf := range families {
		if strings.HasPrefix(name, "toto_queries") && !strings.HasSuffix(name, "_created") {
			for _, m := range mf.Metric {
				answered += m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			}
		}
	}
	if len(families) == 0 || answered < 1 {
		t.Errorf("CollectMetrics: %d families, %v queries counted, want the query just answered", len(families), answered)
	}
}

// TestBadInput: what Grafana can send. Each gets a per-query error (or a valid answer where the
// defaults make the query valid) or a clean gRPC status, and the process stays up.
func TestBadInput(t *testing.T) {
	p := sharedPlugin(t)
	now := time.Now()
	from, to := now.Add(-time.Hour), now
	raw := func(ref string, body string) *pluginv2.DataQuery {
		q := query(ref, from, to, nil)
		q.Json = []byte(body)
		return q
	}
	many := make([]*pluginv2.DataQuery, 50)
	for i := range many {
		many[i] = query(fmt.Sprintf("Q%02d", i), from, to, map[string]any{"source": "demo", "scenario": "cpu", "horizon": 8})
	}
	// A 20 MiB query: inline series of 100,000 points each (about 3.3 MB per series), padded.
	var big []any
	for i := range 6 {
		big = append(big, inlineSeries(fmt.Sprintf("big%d", i), map[string]string{"i": fmt.Sprint(i)}, now, time.Second, 100_000))
	}
	huge := query("A", from, to, map[string]any{"source": "inline", "series": big, "horizon": 8})
	if len(huge.Json) < 20<<20 {
		huge.Json = append(huge.Json[:len(huge.Json)-1], []byte(`,"pad":"`+strings.Repeat("x", 20<<20-len(huge.Json))+`"}`)...)
	}
	inverted := query("A", from, to, map[string]any{"source": "demo", "horizon": 8})
	inverted.TimeRange = &pluginv2.TimeRange{FromEpochMS: to.UnixMilli(), ToEpochMS: from.UnixMilli()}

	cases := []struct {
		name    string
		queries []*pluginv2.DataQuery
		noDS    bool
		mustErr []string // when set, a 4xx naming one of these words is required
		allOK   bool     // every refId must succeed
	}{
		{name: "empty json", queries: []*pluginv2.DataQuery{raw("A", "")}},
		{name: "empty object", queries: []*pluginv2.DataQuery{raw("A", "{}")}},
		{name: "only Grafana's keys", queries: []*pluginv2.DataQuery{raw("A",
			`{"refId":"A","datasource":{"type":"toto-forecast-datasource","uid":"toto"},"intervalMs":15000,"maxDataPoints":1311,"hide":false}`)}},
		{name: "not json", queries: []*pluginv2.DataQuery{raw("A", "{not json")}, mustErr: []string{"json"}},
		{name: "unknown queryType", queries: []*pluginv2.DataQuery{query("A", from, to, map[string]any{"queryType": "bogus"})},
			mustErr: []string{"querytype", "bogus"}},
		{name: "from after to", queries: []*pluginv2.DataQuery{inverted}, mustErr: []string{"time", "range", "from"}},
		{name: "50 refIds", queries: many, allOK: true},
		{name: "no data-source settings", queries: []*pluginv2.DataQuery{query("A", from, to, map[string]any{"source": "demo", "horizon": 8})}, noDS: true},
		{name: "20 MiB request", queries: []*pluginv2.DataQuery{huge}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pc := pluginContext(true)
			if tc.noDS {
				pc.DataSourceInstanceSettings = nil
			}
			req := &pluginv2.QueryDataRequest{PluginContext: pc, Queries: tc.queries}
			resp, err := queryData(t, p, req)
			switch {
			case err != nil:
				t.Logf("gRPC status: %v", err)
				cleanStatus(t, err)
				if tc.mustErr != nil || tc.allOK {
					t.Errorf("want per-query answers, got a gRPC error: %v", err)
				}
			default:
				r := decode(t, req, resp)
				for i, q := range tc.queries {
					dr := r.raw.Responses[q.RefId]
					if i == 0 && dr != nil {
						t.Logf("%s: status %d %q (%d frames)", q.RefId, dr.Status, dr.Error, len(dr.Frames))
					}
					switch {
					case dr == nil:
					case tc.mustErr != nil:
						r.failed(t, q.RefId, tc.mustErr...)
					case tc.allOK:
						r.ok(t, q.RefId)
					case dr.Status == 200:
						if dr.Error != "" {
							t.Errorf("%s: status 200 with error %q", q.RefId, dr.Error)
						}
					case dr.Status < 400 || dr.Status > 499 || dr.Error == "":
						t.Errorf("%s: status %d error %q, want 200 or a 4xx with a message", q.RefId, dr.Status, dr.Error)
					}
				}
			}
			if p.client.Exited() {
				t.Fatalf("the plugin process died")
			}
		})
	}
	waitHealthy(t, p)
}

// TestKillAndRelaunch: Grafana stops a plugin with go-plugin's Kill (GRPCController.Shutdown,
// then SIGKILL after 2 s). The server must be gone within 2 s, with no orphaned children, and a
// second launch must work.
func TestKillAndRelaunch(t *testing.T) {
	for i := range 2 {
		p := launch(t, grafanaEnv())
		waitHealthy(t, p)
		children := descendants(p.pid)
		start := time.Now()
		p.client.Kill()
		for alive(p.pid) && time.Since(start) < 2*time.Second {
			time.Sleep(20 * time.Millisecond)
		}
		elapsed := time.Since(start).Round(time.Millisecond)
		if alive(p.pid) || elapsed > 2*time.Second {
			t.Errorf("launch %d: PID %d still running %v after Kill()", i+1, p.pid, elapsed)
		} else {
			t.Logf("launch %d: PID %d gone %v after Kill()", i+1, p.pid, elapsed)
		}
		for _, c := range children {
			if alive(c) {
				t.Errorf("launch %d: child %d (%s) survived the plugin", i+1, c, cmdline(c))
				syscall.Kill(c, syscall.SIGKILL)
			}
		}
	}
}
