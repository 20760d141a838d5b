package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// TestQueryAnnotations: a threshold query sent by the frontend's annotation support
// (annotation: true, refId Anno) decodes with the SDK into the fields Grafana maps to
// annotations: time, timeEnd (regions), text and tags.
func TestQueryAnnotations(t *testing.T) {
	p := sharedPlugin(t)
	now := time.Now().Truncate(time.Minute)
	from, to := now.Add(-6*time.Hour), now.Add(14*24*time.Hour)
	req := &pluginv2.QueryDataRequest{
		PluginContext: pluginContext(true),
		Queries: []*pluginv2.DataQuery{
			query("Anno", from, to, map[string]any{"queryType": "threshold", "source": "demo", "scenario": "disk-fill",
				"model": "seasonal-naive", "threshold": 0, "direction": "below", "horizon": "14d", "annotation": true}),
		},
	}
	r := mustQuery(t, p, req)
	frames := r.ok(t, "Anno")
	if len(frames) != 1 {
		t.Fatalf("Anno: %d frames, want one annotation frame", len(frames))
	}
	f := frames[0]
	want := map[string]data.FieldType{
		"time": data.FieldTypeTime, "timeEnd": data.FieldTypeTime, "text": data.FieldTypeString, "tags": data.FieldTypeString,
	}
	for name, typ := range want {
		field, idx := f.FieldByName(name)
		if idx < 0 {
			t.Fatalf("Anno: no %q field (fields: %v)", name, f.Fields)
		}
		if field.Type() != typ {
			t.Errorf("Anno: field %q is %s, want %s", name, field.Type(), typ)
		}
	}
	text, _ := f.FieldByName("text")
	tags, _ := f.FieldByName("tags")
	start, _ := f.FieldByName("time")
	end, _ := f.FieldByName("timeEnd")
	var breaches int
	for i := 0; i < f.Rows(); i++ {
		s, tg := text.At(i).(string), tags.At(i).(string)
		if !strings.Contains(tg, "toto-forecast") {
			t.Errorf("Anno row %d: tags %q lack toto-forecast", i, tg)
		}
		if end.At(i).(time.Time).Before(start.At(i).(time.Time)) {
			t.Errorf("Anno row %d: timeEnd before time", i)
		}
		if strings.Contains(s, "falls below 0") {
			breaches++
		}
	}
	if breaches != 1 {
		t.Errorf("Anno: %d breach regions, want 1 (the demo disk)", breaches)
	}
}
