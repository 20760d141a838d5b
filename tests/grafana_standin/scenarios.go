package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// standinType is the data source type whose queries pick a frame kind by "scenario".
const standinType = "toto-standin"

// Values are simple functions of the point index k so that tests can compute what they expect:
// series s of a scenario has value s*1000 + k at the k-th grid time (grid = from aligned down to
// the step, every step up to to).

type timeRange struct{ from, to time.Time }

type scenarioQuery struct {
	Scenario    string `json:"scenario"`
	Series      int    `json:"series"`
	DelayMs     int    `json:"delayMs"`
	TrickleMs   int    `json:"trickleMs"`
	DisplayName string `json:"displayName"`
	Unit        string `json:"unit"`
}

func mustJSON(v any) json.RawMessage { b, _ := json.Marshal(v); return b }

var v01 = data.FrameTypeVersion{0, 1}

func stepOf(q dsQuery) time.Duration {
	ms := q.IntervalMs
	if ms <= 0 {
		ms = 1000
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// gridTimes are the regular times of a query: from aligned down to the step, through to.
func gridTimes(tr timeRange, step time.Duration) []time.Time {
	start := tr.from.Truncate(step)
	var out []time.Time
	for t := start; !t.After(tr.to) && len(out) < 11000; t = t.Add(step) {
		out = append(out, t)
	}
	return out
}

func ramp(n int, base float64) []float64 {
	v := make([]float64, n)
	for k := range v {
		v[k] = base + float64(k)
	}
	return v
}

func multiFrame(times []time.Time, values any, labels data.Labels, conf *data.FieldConfig) *data.Frame {
	value := data.NewField("Value", labels, values)
	value.Config = conf
	return data.NewFrame("", data.NewField("Time", nil, times), value).
		SetMeta(&data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: v01})
}

func series(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// scenario builds the answer of a toto-standin query; the duration, when set, makes the server
// trickle the body out at that pace per 16 bytes.
func scenario(ctx context.Context, q dsQuery, tr timeRange) (backend.DataResponse, time.Duration) {
	var sq scenarioQuery
	_ = json.Unmarshal(q.Raw, &sq)
	times := gridTimes(tr, stepOf(q))
	n := len(times)
	var frames data.Frames
	switch sq.Scenario {
	case "multi", "":
		for s := range series(sq.Series, 2) {
			var conf *data.FieldConfig
			if sq.DisplayName != "" || sq.Unit != "" {
				conf = &data.FieldConfig{Unit: sq.Unit}
				if sq.DisplayName != "" {
					conf.DisplayNameFromDS = fmt.Sprintf("%s %d", sq.DisplayName, s)
				}
			}
			frames = append(frames, multiFrame(times, ramp(n, float64(s*1000)),
				data.Labels{"series": fmt.Sprintf("s%d", s)}, conf))
		}
	case "wide":
		count := make([]int64, n)
		for k := range count {
			count[k] = int64(10 * k)
		}
		frames = data.Frames{data.NewFrame("wide",
			data.NewField("time", nil, times),
			data.NewField("cpu", data.Labels{"host": "a"}, ramp(n, 0)),
			data.NewField("cpu", data.Labels{"host": "b"}, ramp(n, 1000)),
			data.NewField("count", nil, count),
		).SetMeta(&data.FrameMeta{Type: data.FrameTypeTimeSeriesWide, TypeVersion: v01})}
	case "long":
		// SQL-style rows: every time twice, once per host; string column host is the dimension.
		var ts []time.Time
		var hosts []string
		var cpu []float64
		var mem []int64
		for k, t := range times {
			for h, host := range []string{"a", "b"} {
				ts = append(ts, t)
				hosts = append(hosts, host)
				cpu = append(cpu, float64(h*1000+k))
				mem = append(mem, int64(h*100+k))
			}
		}
		frames = data.Frames{data.NewFrame("long",
			data.NewField("time", nil, ts), data.NewField("host", nil, hosts),
			data.NewField("cpu", nil, cpu), data.NewField("mem", nil, mem),
		).SetMeta(&data.FrameMeta{Type: data.FrameTypeTimeSeriesLong, TypeVersion: v01})}
	case "legacy":
		// No meta at all (older plugins): first time field + every number field is a series.
		reads := make([]int64, n)
		for k := range reads {
			reads[k] = int64(k)
		}
		frames = data.Frames{data.NewFrame("sensor",
			data.NewField("time", nil, times),
			data.NewField("temp", nil, ramp(n, 0)),
			data.NewField("reads", nil, reads),
		)}
	case "nulls":
		vals := make([]*float64, n)
		for k := range vals {
			if k%3 != 1 {
				v := float64(k)
				vals[k] = &v
			}
		}
		frames = data.Frames{multiFrame(times, vals, data.Labels{"series": "nullable"}, nil)}
	case "nonfinite":
		vals := ramp(n, 0)
		special := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
		for i, v := range special {
			if i+1 < n {
				vals[i+1] = v
			}
		}
		frames = data.Frames{multiFrame(times, vals, data.Labels{"series": "nonfinite"}, nil)}
	case "several":
		// InfluxDB-style: one frame per series, no meta, the dimension in the labels.
		for s, host := range []string{"a", "b", "c"} {
			frames = append(frames, data.NewFrame("",
				data.NewField("time", nil, times),
				data.NewField("value", data.Labels{"host": host}, ramp(n, float64(s*1000))),
			))
		}
	case "jitter":
		// Loki/SQL-style irregular times: each point within ±20 s of its grid time, plus a
		// sub-millisecond part (the JSON carries it in "nanos").
		jt := make([]time.Time, n)
		for k, t := range times {
			off := time.Duration((k*7919)%41-20) * time.Second
			jt[k] = t.Add(off + time.Duration(k%7)*time.Millisecond + 250*time.Microsecond)
		}
		frames = data.Frames{multiFrame(jt, ramp(n, 0), data.Labels{"series": "jitter"}, nil)}
	case "numeric":
		for s, host := range []string{"a", "b"} {
			frames = append(frames, data.NewFrame("",
				data.NewField("Value", data.Labels{"host": host}, []float64{float64(s + 1)}),
			).SetMeta(&data.FrameMeta{Type: data.FrameTypeNumericMulti, TypeVersion: v01}))
		}
	case "table":
		frames = data.Frames{data.NewFrame("",
			data.NewField("host", nil, []string{"a", "b"}),
			data.NewField("status", nil, []string{"up", "down"}),
			data.NewField("cpu", nil, []float64{1, 2}),
		).SetMeta(&data.FrameMeta{Type: data.FrameTypeTable})}
	case "empty":
		frames = data.Frames{data.NewFrame("").SetMeta(&data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: v01})}
	case "error":
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream,
			`parse error at line 1, col 5: syntax error: unexpected "}"`), 0
	case "slow":
		select {
		case <-ctx.Done():
			return backend.ErrDataResponse(backend.StatusTimeout, "cancelled"), 0
		case <-time.After(time.Duration(max(sq.DelayMs, 1)) * time.Millisecond):
		}
		frames = data.Frames{multiFrame(times, ramp(n, 0), data.Labels{"series": "slow"}, nil)}
	case "slowbody":
		frames = data.Frames{multiFrame(times, ramp(n, 0), data.Labels{"series": "slowbody"}, nil)}
		return backend.DataResponse{Frames: frames}, time.Duration(max(sq.TrickleMs, 1)) * time.Millisecond
	case "huge":
		for s := range series(sq.Series, 500) {
			frames = append(frames, multiFrame(times, ramp(n, float64(s)),
				data.Labels{"series": fmt.Sprintf("s%04d", s)}, nil))
		}
	default:
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourcePlugin,
			fmt.Sprintf("unknown scenario %q", sq.Scenario)), 0
	}
	for _, f := range frames {
		if f.Meta == nil {
			continue
		}
		f.Meta.ExecutedQueryString = "scenario " + sq.Scenario
	}
	return backend.DataResponse{Frames: frames}, 0
}
