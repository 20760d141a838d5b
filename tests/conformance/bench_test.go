package conformance

import (
	"context"
	"encoding/json"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// BenchmarkQueryDataOneSeries times one-series QueryData calls as Grafana makes them (go-plugin,
// the SDK's client over the unix socket), for bench/grafana_overhead.py, which compares them with
// the direct model call on the same input. Not a test: it runs only with -bench.
//
// TOTO_BENCH_QUERY_JSON: a file holding the query model (the JSON of one DataQuery); the plugin's
// model is TOTO_CONFORMANCE_MODEL (a random-weight checkpoint); the result cache is off;
// TOTO_BENCH_PLUGIN_ENV adds comma-separated KEY=VALUE pairs to the plugin's environment.
func BenchmarkQueryDataOneSeries(b *testing.B) {
	path := os.Getenv("TOTO_BENCH_QUERY_JSON")
	if path == "" {
		b.Fatal("set TOTO_BENCH_QUERY_JSON (bench/grafana_overhead.py does)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var model map[string]any
	if err := json.Unmarshal(raw, &model); err != nil {
		b.Fatal(err)
	}
	extra := []string{"TOTO_CACHE_TTL_S=0"}
	if more := os.Getenv("TOTO_BENCH_PLUGIN_ENV"); more != "" { // e.g. TOTO_TORCH_THREADS=2,TOTO_CPU_SLOTS=64
		extra = append(extra, strings.Split(more, ",")...)
	}
	p := launch(b, grafanaEnv(extra...))
	defer p.client.Kill()
	waitHealthy(b, p)
	now := time.Now()
	req := &pluginv2.QueryDataRequest{
		PluginContext: pluginContext(true),
		Queries:       []*pluginv2.DataQuery{query("A", now.Add(-48*time.Hour), now, model)},
	}
	call := func() time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		started := time.Now()
		resp, err := p.data.QueryData(ctx, req)
		elapsed := time.Since(started)
		if err != nil {
			b.Fatalf("QueryData: %v", err)
		}
		if r := resp.Responses["A"]; r.Status != 200 || r.Error != "" {
			b.Fatalf("status %d: %s", r.Status, r.Error)
		}
		return elapsed
	}
	// The plugin's own count of seconds inside model calls (CollectMetrics), read around each call:
	// e2e minus that is the overhead of that very call, whatever the machine's speed at the time.
	inference := func() float64 {
		resp, err := p.diag.CollectMetrics(context.Background(), &pluginv2.CollectMetricsRequest{
			PluginContext: pluginContext(true)})
		if err != nil {
			b.Fatalf("CollectMetrics: %v", err)
		}
		for _, line := range strings.Split(string(resp.Metrics.Prometheus), "\n") {
			if v, ok := strings.CutPrefix(line, "toto_inference_seconds_sum "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err == nil {
					return f
				}
			}
		}
		b.Fatal("no toto_inference_seconds_sum in CollectMetrics")
		return 0
	}
	for range 5 {
		call()
	}
	b.ResetTimer()
	times := make([]float64, 0, b.N)
	overheads := make([]float64, 0, b.N)
	for range b.N {
		before := inference()
		elapsed := float64(call().Microseconds()) / 1000
		model := 1000 * (inference() - before)
		times = append(times, elapsed)
		overheads = append(overheads, elapsed-model)
	}
	b.StopTimer()
	sort.Float64s(times)
	sort.Float64s(overheads)
	b.ReportMetric(times[len(times)/2], "ms-median")
	b.ReportMetric(times[len(times)/10], "ms-p10")
	b.ReportMetric(overheads[len(overheads)/2], "ms-beyond-model-median")
}
