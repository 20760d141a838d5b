package conformance

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// panelCase is one time-series panel: the queries a dashboard sends and the panel's time range.
type panelCase struct {
	name    string
	title   string
	from    time.Time
	to      time.Time
	queries []*pluginv2.DataQuery
}

// panelFrame is what TestPanelFrames writes per case for the browser test
// (grafana-plugin/frontend/panels): the panel's range and, under "response", the JSON Grafana's
// /api/ds/query returns to the browser for these queries.
type panelFrame struct {
	Name     string          `json:"name"`
	Title    string          `json:"title"`
	From     int64           `json:"from"`
	To       int64           `json:"to"`
	Response json.RawMessage `json:"response"`
}

// The end of the inline histories: fixed, so the panels that use them look the same on every run
// (an inline history sets the grid; the demo source's history ends at the wall clock's now).
var panelEnd = time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)

// wave is n points at step ending at end: a daily swing, a slow trend and deterministic noise
// around level; null where hole(t) is true (a gap in the history).
func wave(level, swing float64, end time.Time, step time.Duration, n int, hole func(time.Time) bool) ([]int64, []any) {
	ts := make([]int64, n)
	vals := make([]any, n)
	for i := range n {
		t := end.Add(-time.Duration(n-1-i) * step)
		ts[i] = t.UnixMilli()
		if hole != nil && hole(t) {
			continue // nil → null
		}
		phase := 2 * math.Pi * float64(t.UnixMilli()%86_400_000) / 86_400_000
		noise := (math.Mod(math.Abs(math.Sin(float64(i)*12.9898)*43758.5453), 1) - 0.5) * 0.25 * swing
		vals[i] = math.Round((level+swing*math.Sin(phase)+0.02*level*float64(i)/float64(n)+noise)*100) / 100
	}
	return ts, vals
}

func inlineWave(name string, labels map[string]string, level, swing float64, hole func(time.Time) bool) map[string]any {
	ts, vals := wave(level, swing, panelEnd, time.Minute, 24*60, hole)
	return map[string]any{"name": name, "labels": labels, "timestamps": ts, "values": vals}
}

func panelCases() []panelCase {
	now := time.Now()
	demoFrom, demoTo := now.Add(-12*time.Hour), now.Add(2*time.Hour)
	// a range that does not end on the hour, as most dashboards' ranges do not
	fixedFrom, fixedTo := panelEnd.Add(-12*time.Hour+10*time.Minute), panelEnd.Add(2*time.Hour+10*time.Minute)
	statistical := func(m map[string]any) map[string]any { m["model"] = "statistical"; return m }
	demo := func(refID string, m map[string]any) *pluginv2.DataQuery {
		m["queryType"], m["source"] = "forecast", "demo"
		return query(refID, demoFrom, demoTo, statistical(m))
	}
	inline := func(refID string, m map[string]any) *pluginv2.DataQuery {
		m["queryType"], m["source"] = "forecast", "inline"
		return query(refID, fixedFrom, fixedTo, statistical(m))
	}
	web := func(instance string, level float64) map[string]any {
		return inlineWave("http_requests", map[string]string{"job": "api", "instance": instance}, level, level/4, nil)
	}
	gap := func(t time.Time) bool { return t.Hour() >= 10 && t.Hour() < 12 } // 10:00-12:00 UTC missing
	return []panelCase{
		{"forecast", "PostgreSQL load: history and forecast (p50, 10–90 % band)", demoFrom, demoTo, []*pluginv2.DataQuery{
			demo("A", map[string]any{"scenario": "postgres-load", "includeHistory": true}),
		}},
		{"two-bands", "CPU: two bands (10–90 % and 20–80 %)", demoFrom, demoTo, []*pluginv2.DataQuery{
			demo("A", map[string]any{"scenario": "cpu", "includeHistory": true, "quantiles": []float64{0.1, 0.2, 0.5, 0.8, 0.9}}),
		}},
		{"labelled-series", "Three series with labels", fixedFrom, fixedTo, []*pluginv2.DataQuery{
			inline("A", map[string]any{"includeHistory": true, "series": []any{
				web("web-1", 120), web("web-2", 220), web("web-3", 320),
			}}),
		}},
		{"history-gap", "A gap in the history", fixedFrom, fixedTo, []*pluginv2.DataQuery{
			inline("A", map[string]any{"includeHistory": true, "series": []any{
				inlineWave("queue_depth", map[string]string{"queue": "orders"}, 80, 30, gap),
			}}),
		}},
		{"threshold", "PostgreSQL load against its 500 QPS overload threshold", demoFrom, demoTo, []*pluginv2.DataQuery{
			demo("A", map[string]any{"scenario": "postgres-load", "includeHistory": true}),
			query("B", demoFrom, demoTo, statistical(map[string]any{"queryType": "threshold", "source": "demo",
				"scenario": "postgres-load", "threshold": 500, "direction": "above"})),
		}},
	}
}

// TestPanelFrames answers the queries of the panels the browser test draws and writes, per panel,
// the JSON Grafana's /api/ds/query would send the browser: the SDK's QueryDataResponse marshalled
// by its own JSON codec, as Grafana's server does. TOTO_PANEL_FRAMES_DIR keeps the files for
// grafana-plugin/frontend/panels.sh; without it they go to a temporary directory.
func TestPanelFrames(t *testing.T) {
	p := sharedPlugin(t)
	dir := os.Getenv("TOTO_PANEL_FRAMES_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range panelCases() {
		t.Run(c.name, func(t *testing.T) {
			req := &pluginv2.QueryDataRequest{PluginContext: pluginContext(true), Queries: c.queries}
			r := mustQuery(t, p, req)
			for _, q := range c.queries {
				frames := r.ok(t, q.RefId)
				if q.QueryType == "forecast" {
					checkTimeSeries(t, q.RefId, frames)
				}
			}
			checkJSON(t, r)
			body, err := json.Marshal(r.sdk)
			if err != nil {
				t.Fatalf("marshal the response: %v", err)
			}
			out, err := json.Marshal(panelFrame{c.name, c.title, c.from.UnixMilli(), c.to.UnixMilli(), body})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, c.name+".json"), out, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}
