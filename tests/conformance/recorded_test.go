package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/grafana/dataplane/sdata/numeric"
	"github.com/grafana/dataplane/sdata/reader"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"go.yaml.in/yaml/v3"
)

// sample is one series Grafana's recording-rule writer would write: its labels and value.
type sample struct {
	labels data.Labels
	value  float64
}

// writtenSamples reads one refId's frames the way Grafana's recording-rule writer does
// (pkg/services/ngalert/writer PointsFromFrames): dataplane's numeric reader, GetCollection(false),
// each metric's one value through NullableFloat64Value, its labels without __name__, the field name
// dropped. It fails on what would make the writer refuse the evaluation (no reader, an empty or null
// value) or silently lose a sample (two with one label set; a frame the reader never looks at).
func writtenSamples(t *testing.T, ref string, frames data.Frames) map[string]sample {
	t.Helper()
	if len(frames) != 1 {
		t.Errorf("%s: %d frames; the numeric-wide reader reads the first only", ref, len(frames))
	}
	if len(frames) == 0 || frames[0].Meta == nil || frames[0].Meta.Type != data.FrameTypeNumericWide ||
		frames[0].Meta.TypeVersion != (data.FrameTypeVersion{0, 1}) {
		t.Errorf("%s: want one numeric-wide [0,1] frame", ref)
		return nil
	}
	if _, err := reader.CanReadBasedOnMeta(frames); err != nil {
		t.Errorf("%s: reader.CanReadBasedOnMeta: %v", ref, err)
	}
	cr, err := numeric.CollectionReaderFromFrames(frames)
	if err != nil {
		t.Errorf("%s: numeric.CollectionReaderFromFrames: %v", ref, err)
		return nil
	}
	c, err := cr.GetCollection(false)
	if err != nil || c.Warning != nil {
		t.Errorf("%s: GetCollection: %v (warning %v)", ref, err, c.Warning)
	}
	out := map[string]sample{}
	for _, m := range c.Refs {
		v, empty, err := m.NullableFloat64Value()
		if err != nil || empty || v == nil {
			t.Errorf("%s: %s%v: value %v (empty %v, err %v): the writer refuses the whole evaluation",
				ref, m.GetMetricName(), m.GetLabels(), v, empty, err)
			continue
		}
		labels := m.GetLabels().Copy()
		delete(labels, "__name__")
		key := labels.String()
		if _, dup := out[key]; dup {
			t.Errorf("%s: two samples with the labels {%s}: the writer would keep one", ref, key)
		}
		out[key] = sample{labels, *v}
	}
	return out
}

// checkRecorded: every series has, for every lead time, yhat, yhat_lower and yhat_upper, ordered;
// it returns how many series there are.
func checkRecorded(t *testing.T, ref string, samples map[string]sample, leads []string) int {
	t.Helper()
	groups := map[string]map[string]float64{} // labels without ml_forecast → ml_forecast → value
	series := map[string]bool{}               // labels without ml_forecast and ml_lead_time
	for _, s := range samples {
		rest := s.labels.Copy()
		delete(rest, "ml_forecast")
		if !slices.Contains(leads, rest["ml_lead_time"]) {
			t.Errorf("%s: {%s}: ml_lead_time not one of %v", ref, s.labels, leads)
		}
		if groups[rest.String()] == nil {
			groups[rest.String()] = map[string]float64{}
		}
		groups[rest.String()][s.labels["ml_forecast"]] = s.value
		delete(rest, "ml_lead_time")
		series[rest.String()] = true
	}
	for key, g := range groups {
		lower, okL := g["yhat_lower"]
		median, okM := g["yhat"]
		upper, okU := g["yhat_upper"]
		if len(g) != 3 || !okL || !okM || !okU {
			t.Errorf("%s: {%s} has forecasts %v, want yhat, yhat_lower, yhat_upper", ref, key, g)
		} else if !(lower <= median && median <= upper) {
			t.Errorf("%s: {%s}: yhat_lower %v, yhat %v, yhat_upper %v are not in order", ref, key, lower, median, upper)
		}
	}
	if len(groups) != len(series)*len(leads) {
		t.Errorf("%s: %d (series, lead time) pairs for %d series and %d lead times", ref, len(groups), len(series), len(leads))
	}
	return len(series)
}

// provisionedRecording is the query of the recording rule in
// grafana-plugin/provisioning/alerting/toto-forecast-recording.yaml, as Grafana's provisioning
// reads it: the rule's one data query (record.from names it), its model and relative range.
func provisionedRecording(t *testing.T) (model map[string]any, fromSeconds int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "grafana-plugin", "provisioning", "alerting", "toto-forecast-recording.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Record struct {
					From string `yaml:"from"`
				} `yaml:"record"`
				Data []struct {
					RefID             string         `yaml:"refId"`
					RelativeTimeRange map[string]int `yaml:"relativeTimeRange"`
					Model             map[string]any `yaml:"model"`
				} `yaml:"data"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("toto-forecast-recording.yaml: %v", err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Record.From != "" && len(r.Data) == 1 && r.Data[0].RefID == r.Record.From {
				return r.Data[0].Model, r.Data[0].RelativeTimeRange["from"]
			}
		}
	}
	t.Fatal("toto-forecast-recording.yaml: no recording rule recording its one query")
	return nil, 0
}

// recordingContext is one data source with every source's settings: Prometheus' URL, the Grafana
// stand-in's token and URL (GF_APP_URL), the stand-in allowed for requests without a user.
// withUser=false is an alert or recording-rule evaluation.
func recordingContext(withUser bool, promURL, standinURL string) *pluginv2.PluginContext {
	pc := backend.PluginContext{
		OrgID: 1, PluginID: pluginID, PluginVersion: "0.1.0",
		GrafanaConfig: backend.NewGrafanaCfg(map[string]string{"GF_APP_URL": standinURL + "/"}),
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 3, UID: "toto-recorded", Type: pluginID, Name: "Toto Forecast (recorded)",
			JSONData:                json.RawMessage(fmt.Sprintf(`{"prometheusUrl":%q,"allowedTargets":["standin"]}`, promURL)),
			DecryptedSecureJSONData: map[string]string{"grafanaToken": standinToken},
			Updated:                 time.UnixMilli(1_700_000_000_000),
		},
	}
	if withUser {
		pc.User = &backend.User{Login: "admin", Name: "admin", Email: "admin@localhost", Role: "Admin"}
	}
	return backend.ToProto().PluginContext(pc)
}

// TestRecordedForecasts: queryType recorded as a Grafana-managed recording rule's query (record.from
// the query itself, no Reduce): for every source (demo on the data source's Toto, inline, a real
// Prometheus, any data source through the Grafana stand-in) and for the provisioned example rule's
// own query (on the real Prometheus), from a dashboard and from an alert or
// recording evaluation (FromAlert, no user), the frames give Grafana's writer one value per series,
// lead time and quantile with unique label sets, and both requests the same numbers. A leadTime
// beyond the horizon a forecast may reach is that query's 400 naming leadTime.
func TestRecordedForecasts(t *testing.T) {
	p := sharedPlugin(t)
	prom := startPrometheus(t)
	standin := startStandin(t)
	leads := []string{"15m", "1h"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{"queryType": "recorded", "leadTime": leads, "step": "1m", "contextLength": 64,
			"quantiles": []float64{0.1, 0.5, 0.9}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	now := time.Now()
	minute := now.Truncate(time.Minute)
	standinEnd := time.UnixMilli(1_700_000_040_000)
	type recordedCase struct {
		ref      string
		from, to time.Time
		model    map[string]any
		series   int // 0: at least two
	}
	cases := []recordedCase{
		{"demo", now.Add(-10 * time.Minute), now, with(map[string]any{"source": "demo", "scenario": "all"}), 0},
		{"inline", minute.Add(-time.Hour), minute, with(map[string]any{"source": "inline", "model": "seasonal-naive",
			"series": []any{
				inlineSeries("db_qps", map[string]string{"host": "a"}, minute, time.Minute, 128),
				inlineSeries("db_qps", map[string]string{"host": "b"}, minute, time.Minute, 128),
			}}), 2},
		{"prometheus", prom.end.Add(-10 * time.Minute), prom.end, with(map[string]any{"source": "prometheus",
			"expr": promMetric, "model": "seasonal-naive"}), len(promSeries)},
		{"grafana", standinEnd.Add(-3 * time.Hour), standinEnd, with(map[string]any{"source": "grafana",
			"sourceDatasource": map[string]string{"uid": "standin", "type": "toto-standin"},
			"sourceQuery":      map[string]any{"scenario": "multi"}, "model": "seasonal-naive"}), 2},
	}
	// The provisioned rule's own query, its metric swapped for one the test Prometheus has.
	rule, fromSeconds := provisionedRecording(t)
	rule["expr"] = promMetric
	cases = append(cases, recordedCase{"provisioned", prom.end.Add(-time.Duration(fromSeconds) * time.Second),
		prom.end, rule, len(promSeries)})
	written := map[bool]map[string]map[string]sample{}
	for _, alert := range []bool{false, true} {
		headers := map[string]string{"X-Dashboard-Uid": "recorded", "X-Panel-Id": "1",
			"http_" + backend.GrafanaUserSignInTokenHeaderName: idToken(t, standin, "user:u-admin", "Admin")}
		if alert {
			headers = map[string]string{backend.FromAlertHeaderName: "true", "X-Cache-Skip": "true",
				"X-Rule-Uid": "toto-db-qps-predicted", "X-Grafana-Org-Id": "1"}
		}
		req := &pluginv2.QueryDataRequest{PluginContext: recordingContext(!alert, prom.url, standin), Headers: headers}
		for _, c := range cases {
			req.Queries = append(req.Queries, query(c.ref, c.from, c.to, c.model))
		}
		req.Queries = append(req.Queries, query("tooFar", now.Add(-time.Hour), now,
			with(map[string]any{"source": "demo", "leadTime": "7d"})))
		r := mustQuery(t, p, req)
		written[alert] = map[string]map[string]sample{}
		for _, c := range cases {
			samples := writtenSamples(t, c.ref, r.ok(t, c.ref))
			n := checkRecorded(t, c.ref, samples, leads)
			if (c.series == 0 && n < 2) || (c.series > 0 && n != c.series) {
				t.Errorf("%s (alert %v): %d series recorded, want %d (0: several)", c.ref, alert, n, c.series)
			}
			written[alert][c.ref] = samples
		}
		r.failed(t, "tooFar", "leadtime")
	}
	for _, c := range cases {
		dashboard, alert := written[false][c.ref], written[true][c.ref]
		for key, s := range alert {
			if d, ok := dashboard[key]; !ok || d.value != s.value {
				t.Errorf("%s {%s}: alert evaluation recorded %v, the dashboard got %v", c.ref, key, s.value, d.value)
			}
		}
		if len(dashboard) != len(alert) {
			t.Errorf("%s: %d samples for the dashboard, %d for the alert evaluation", c.ref, len(dashboard), len(alert))
		}
	}
}
