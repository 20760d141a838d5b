package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// promQuery is the part of a Prometheus query object the stand-in reads (Grafana's editor keys).
type promQuery struct {
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
}

type promAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

var legendToken = regexp.MustCompile(`\{\{\s*(.+?)\s*\}\}`)

// metricName is Prometheus's series notation: name{k="v", ...} with the other labels sorted.
func metricName(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	if len(parts) == 0 {
		return labels["__name__"]
	}
	return labels["__name__"] + "{" + strings.Join(parts, ", ") + "}"
}

// displayName follows Grafana's Prometheus data source: "__auto" leaves naming to the labels,
// a legend format fills {{label}}, otherwise the series notation; the expression when unlabelled.
func displayName(q promQuery, labels map[string]string) string {
	name := metricName(labels)
	if q.LegendFormat == "__auto" {
		if len(labels) > 0 {
			name = ""
		}
	} else if q.LegendFormat != "" {
		name = legendToken.ReplaceAllStringFunc(q.LegendFormat, func(m string) string {
			return labels[legendToken.FindStringSubmatch(m)[1]]
		})
	}
	if name == "" && len(labels) == 0 {
		name = q.Expr
	}
	return name
}

func secondsString(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// prometheus runs the query as a range query (step = intervalMs, at least range/11000, times
// aligned down to the step as Grafana does) and shapes one timeseries-multi frame per series.
func (c config) prometheus(ctx context.Context, q dsQuery, tr timeRange) backend.DataResponse {
	var pq promQuery
	_ = json.Unmarshal(q.Raw, &pq)
	if c.prometheusURL == "" {
		return backend.ErrDataResponse(backend.StatusBadRequest, "the stand-in was started without -prometheus-url")
	}
	step := stepOf(q).Truncate(time.Millisecond)
	if safe := tr.to.Sub(tr.from) / 11000; step < safe {
		step = safe.Truncate(time.Millisecond) + time.Millisecond
	}
	if step <= 0 {
		step = time.Second
	}
	start, end := tr.from.Truncate(step), tr.to.Truncate(step)
	form := url.Values{"query": {pq.Expr}, "start": {secondsString(start)}, "end": {secondsString(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.prometheusURL, "/")+"/api/v1/query_range",
		strings.NewReader(form.Encode()))
	if err != nil {
		return backend.ErrDataResponse(backend.StatusInternal, err.Error())
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
	}
	var ans promAnswer
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Status != "success" {
		msg := ans.Error
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d from Prometheus", res.StatusCode)
		}
		return backend.ErrDataResponseWithSource(backend.Status(res.StatusCode), backend.ErrorSourceDownstream, msg)
	}
	executed := fmt.Sprintf("Expr: %s\nStep: %s", pq.Expr, step)
	var frames data.Frames
	for _, item := range ans.Data.Result {
		times := make([]time.Time, 0, len(item.Values))
		values := make([]float64, 0, len(item.Values))
		for _, p := range item.Values {
			ts, _ := p[0].(float64)
			s, _ := p[1].(string)
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				v = math.NaN()
			}
			times = append(times, time.UnixMilli(int64(math.Round(ts*1000))).UTC())
			values = append(values, v)
		}
		timeField := data.NewField(data.TimeSeriesTimeFieldName, nil, times)
		timeField.Config = &data.FieldConfig{Interval: float64(step.Milliseconds())}
		valueField := data.NewField(data.TimeSeriesValueFieldName, data.Labels(item.Metric), values)
		if name := displayName(pq, item.Metric); name != "" {
			valueField.Config = &data.FieldConfig{DisplayNameFromDS: name}
		}
		frames = append(frames, data.NewFrame("", timeField, valueField).SetMeta(&data.FrameMeta{
			Type: data.FrameTypeTimeSeriesMulti, TypeVersion: v01, ExecutedQueryString: executed,
		}))
	}
	if len(frames) == 0 {
		frames = data.Frames{data.NewFrame("").SetMeta(&data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: v01, ExecutedQueryString: executed})}
	}
	return backend.DataResponse{Frames: frames}
}
