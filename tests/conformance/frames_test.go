package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/dataplane/sdata/numeric"
	"github.com/grafana/dataplane/sdata/reader"
	"github.com/grafana/dataplane/sdata/timeseries"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// response is one QueryData answer decoded twice: every frame with data.UnmarshalArrowFrames
// (frames), and the whole response with backend.FromProto, which is what Grafana's plugin client
// hands to dashboards and alerting (sdk).
type response struct {
	raw    *pluginv2.QueryDataResponse
	frames map[string]data.Frames
	sdk    *backend.QueryDataResponse
}

func queryData(t *testing.T, p *pluginProcess, req *pluginv2.QueryDataRequest) (*pluginv2.QueryDataResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return p.data.QueryData(ctx, req)
}

// mustQuery sends req and checks the envelope rules Grafana relies on: every refId answered,
// a valid status (Grafana reads 0 as 500), the requested format, frames that decode, each frame's
// refId set.
func mustQuery(t *testing.T, p *pluginProcess, req *pluginv2.QueryDataRequest) response {
	t.Helper()
	raw, err := queryData(t, p, req)
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	return decode(t, req, raw)
}

func decode(t *testing.T, req *pluginv2.QueryDataRequest, raw *pluginv2.QueryDataResponse) response {
	t.Helper()
	var err error
	r := response{raw: raw, frames: map[string]data.Frames{}}
	for _, q := range req.Queries {
		if _, ok := raw.Responses[q.RefId]; !ok {
			t.Errorf("refId %q not answered", q.RefId)
		}
	}
	for ref, dr := range raw.Responses {
		if dr.Status < 100 || dr.Status > 599 {
			t.Errorf("%s: DataResponse.status %d is not an HTTP status (Grafana turns it into 500)", ref, dr.Status)
		}
		if dr.Format != req.Format {
			t.Errorf("%s: DataResponse.format %v, request asked for %v", ref, dr.Format, req.Format)
		}
		frames, err := data.UnmarshalArrowFrames(dr.Frames)
		if err != nil {
			t.Errorf("%s: data.UnmarshalArrowFrames: %v", ref, err)
			continue
		}
		for i, f := range frames {
			if f.RefID != ref {
				t.Errorf("%s: frame %d has refId %q", ref, i, f.RefID)
			}
		}
		r.frames[ref] = frames
	}
	if r.sdk, err = backend.FromProto().QueryDataResponse(raw); err != nil {
		t.Fatalf("backend.FromProto().QueryDataResponse: %v", err)
	}
	return r
}

// ok checks that refId succeeded with status 200 and at least one frame.
func (r response) ok(t *testing.T, ref string) data.Frames {
	t.Helper()
	dr := r.raw.Responses[ref]
	if dr == nil {
		return nil
	}
	if dr.Error != "" || dr.Status != 200 {
		t.Errorf("%s: status %d error %q, want 200", ref, dr.Status, dr.Error)
	}
	if len(r.frames[ref]) == 0 {
		t.Errorf("%s: no frames", ref)
	}
	return r.frames[ref]
}

// failed checks that refId got a per-query client error whose message names one of words.
func (r response) failed(t *testing.T, ref string, words ...string) {
	t.Helper()
	dr := r.raw.Responses[ref]
	if dr == nil {
		return
	}
	if dr.Status < 400 || dr.Status > 499 || dr.Error == "" {
		t.Errorf("%s: status %d error %q, want a 4xx status and a message", ref, dr.Status, dr.Error)
		return
	}
	msg := strings.ToLower(dr.Error)
	for _, w := range words {
		if strings.Contains(msg, w) {
			return
		}
	}
	t.Errorf("%s: error %q names none of %v", ref, dr.Error, words)
}

func valueFields(f *data.Frame) []*data.Field {
	var out []*data.Field
	for _, field := range f.Fields {
		if field.Type().Numeric() {
			out = append(out, field)
		}
	}
	return out
}

func isForecast(f *data.Frame) bool {
	return slices.ContainsFunc(valueFields(f), func(v *data.Field) bool { return v.Labels["quantile"] != "" })
}

func quantileOf(t *testing.T, field *data.Field) float64 {
	t.Helper()
	q, err := strconv.ParseFloat(field.Labels["quantile"], 64)
	if err != nil {
		t.Errorf("field %q: quantile label %q is not a number", field.Name, field.Labels["quantile"])
	}
	return q
}

// checkTimeSeries validates the frames of one refId with grafana/dataplane's reader, the code
// server-side expressions run: the type Grafana can read, then the data checks (sorted times,
// no duplicate name+labels).
func checkTimeSeries(t *testing.T, ref string, frames data.Frames) timeseries.Collection {
	t.Helper()
	if len(frames) == 0 || frames[0].Meta == nil {
		t.Errorf("%s: first frame has no meta; dataplane readers need meta.type", ref)
		return timeseries.Collection{}
	}
	m := frames[0].Meta
	if m.Type != data.FrameTypeTimeSeriesMulti && m.Type != data.FrameTypeTimeSeriesWide {
		t.Errorf("%s: frame type %q, want timeseries-multi or timeseries-wide", ref, m.Type)
	}
	if m.TypeVersion.IsZero() {
		t.Errorf("%s: typeVersion [0,0]: Grafana's expressions ignore the type and fall back to legacy parsing", ref)
	}
	if _, err := reader.CanReadBasedOnMeta(frames); err != nil {
		t.Errorf("%s: reader.CanReadBasedOnMeta: %v", ref, err)
	}
	cr, err := timeseries.CollectionReaderFromFrames(frames)
	if err != nil {
		t.Errorf("%s: CollectionReaderFromFrames: %v", ref, err)
		return timeseries.Collection{}
	}
	c, err := cr.GetCollection(true)
	if err != nil {
		t.Errorf("%s: GetCollection(validateData): %v", ref, err)
	}
	if c.Warning != nil {
		t.Errorf("%s: dataplane warning: %v", ref, c.Warning)
	}
	if len(c.Refs) == 0 {
		t.Errorf("%s: dataplane reader found no series", ref)
	}
	for i, f := range frames {
		if len(f.TypeIndices(data.FieldTypeTime)) == 0 {
			t.Errorf("%s: frame %d has no non-nullable time field", ref, i)
		}
	}
	return c
}

// checkForecastFrame checks one forecast series frame: the median first (alerting reads only the
// first value field of a timeseries-multi frame), one field per quantile, labels that keep the
// fields distinct, display names, and the band (fillBelowTo on the upper field naming the lower).
func checkForecastFrame(t *testing.T, ref string, f *data.Frame, quantiles []float64) {
	t.Helper()
	values := valueFields(f)
	if len(values) == 0 {
		t.Errorf("%s: forecast frame %q has no value field", ref, f.Name)
		return
	}
	if first := values[0]; quantileOf(t, first) != 0.5 {
		t.Errorf("%s: first value field is %q %v, want the median (quantile 0.5)", ref, first.Name, first.Labels)
	}
	// Grafana's frontend finds a band's other edge by display name (or field name): the names must
	// be unique within the frame.
	var got []float64
	names := map[string]*data.Field{}
	for _, v := range values {
		got = append(got, quantileOf(t, v))
		if v.Config == nil || v.Config.DisplayNameFromDS == "" {
			t.Errorf("%s: field %q has no config.displayNameFromDS", ref, v.Name)
			continue
		}
		if _, dup := names[v.Config.DisplayNameFromDS]; dup {
			t.Errorf("%s: two fields display as %q", ref, v.Config.DisplayNameFromDS)
		}
		names[v.Config.DisplayNameFromDS] = v
	}
	slices.Sort(got)
	if !slices.Equal(got, quantiles) {
		t.Errorf("%s: frame %q quantiles %v, want %v", ref, f.Name, got, quantiles)
	}
	if len(quantiles) < 2 {
		return
	}
	var bands int
	for _, v := range values {
		if v.Config == nil {
			continue
		}
		target, ok := v.Config.Custom["fillBelowTo"].(string)
		if !ok {
			continue
		}
		bands++
		lower, found := names[target]
		switch {
		case !found:
			t.Errorf("%s: %q fills below to %q, which is no field's display name", ref, v.Config.DisplayNameFromDS, target)
		case quantileOf(t, v) != quantiles[len(quantiles)-1] || quantileOf(t, lower) != quantiles[0]:
			t.Errorf("%s: band %q -> %q, want the highest quantile filled to the lowest", ref, v.Config.DisplayNameFromDS, target)
		}
	}
	if bands != 1 {
		t.Errorf("%s: frame %q has %d fields with custom.fillBelowTo, want 1", ref, f.Name, bands)
	}
}

// checkNumeric validates threshold frames with dataplane's numeric reader and checks that the
// metrics named in want are there.
func checkNumeric(t *testing.T, ref string, frames data.Frames, want ...string) numeric.Collection {
	t.Helper()
	if len(frames) == 0 || frames[0].Meta == nil || frames[0].Meta.Type.Kind() != data.KindNumeric {
		t.Errorf("%s: want numeric frames (numeric-wide/multi/long)", ref)
		return numeric.Collection{}
	}
	if frames[0].Meta.TypeVersion.IsZero() {
		t.Errorf("%s: numeric frame without typeVersion", ref)
	}
	if _, err := reader.CanReadBasedOnMeta(frames); err != nil {
		t.Errorf("%s: reader.CanReadBasedOnMeta: %v", ref, err)
	}
	cr, err := numeric.CollectionReaderFromFrames(frames)
	if err != nil {
		t.Errorf("%s: numeric reader: %v", ref, err)
		return numeric.Collection{}
	}
	// sdata's numeric readers panic on validateData=true ("not implemented"); Grafana's
	// expressions call GetCollection(false), and the (name, labels) check is done here.
	c, err := cr.GetCollection(false)
	if err != nil {
		t.Errorf("%s: numeric GetCollection: %v", ref, err)
	}
	if c.Warning != nil {
		t.Errorf("%s: dataplane warning: %v", ref, c.Warning)
	}
	seen := map[string]bool{}
	ids := map[string]bool{}
	for _, m := range c.Refs {
		seen[m.GetMetricName()] = true
		id := m.GetMetricName() + "{" + m.GetLabels().String() + "}"
		if ids[id] {
			t.Errorf("%s: duplicate metric %s", ref, id)
		}
		ids[id] = true
		if m.GetMetricName() == "breach_probability" {
			v, empty, err := m.NullableFloat64Value()
			if err != nil || empty || v == nil || *v < 0 || *v > 1 {
				t.Errorf("%s: breach_probability %v (empty %v, err %v), want a value in [0,1]", ref, v, empty, err)
			}
		}
	}
	for _, name := range want {
		if !seen[name] {
			t.Errorf("%s: no %s metric among %v", ref, name, keys(seen))
		}
	}
	return c
}

// checkUniqueLabels: ngalert rejects a result whose series or numbers share a label set
// ("frame cannot uniquely be identified by its labels"); field names do not count.
func checkUniqueLabels(t *testing.T, ref string, frames data.Frames) {
	t.Helper()
	seen := map[string]string{}
	for _, f := range frames {
		for _, v := range valueFields(f) {
			key := v.Labels.String()
			if other, dup := seen[key]; dup {
				t.Errorf("%s: value fields %q and %q share the label set {%s}", ref, other, v.Name, key)
			}
			seen[key] = v.Name
		}
	}
}

// jsonFrame is the SDK's JSON frame form: what /api/ds/query returns to Grafana's frontend.
type jsonFrame struct {
	Schema struct {
		Name  string `json:"name"`
		RefID string `json:"refId"`
		Meta  *struct {
			Type        string `json:"type"`
			TypeVersion []int  `json:"typeVersion"`
		} `json:"meta"`
		Fields []struct {
			Name   string            `json:"name"`
			Type   string            `json:"type"`
			Labels map[string]string `json:"labels"`
			Config *struct {
				DisplayNameFromDS string         `json:"displayNameFromDS"`
				Custom            map[string]any `json:"custom"`
			} `json:"config"`
		} `json:"fields"`
	} `json:"schema"`
	Data struct {
		Values [][]any `json:"values"`
	} `json:"data"`
}

// checkJSON marshals the SDK response to JSON and checks that names, labels, display names, the
// band config and time values survive.
func checkJSON(t *testing.T, r response) {
	t.Helper()
	raw, err := json.Marshal(r.sdk)
	if err != nil {
		t.Fatalf("marshal the response to JSON: %v", err)
	}
	var doc struct {
		Results map[string]struct {
			Status int         `json:"status"`
			Error  string      `json:"error"`
			Frames []jsonFrame `json:"frames"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse the JSON response: %v", err)
	}
	for ref, dr := range r.sdk.Responses {
		jr, ok := doc.Results[ref]
		if !ok {
			t.Errorf("JSON: refId %s missing", ref)
			continue
		}
		if jr.Status != int(r.raw.Responses[ref].Status) {
			t.Errorf("JSON %s: status %d, wire status %d", ref, jr.Status, r.raw.Responses[ref].Status)
		}
		if len(jr.Frames) != len(dr.Frames) {
			t.Errorf("JSON %s: %d frames, decoded %d", ref, len(jr.Frames), len(dr.Frames))
			continue
		}
		for i, f := range dr.Frames {
			compareJSONFrame(t, fmt.Sprintf("JSON %s frame %d", ref, i), f, jr.Frames[i])
		}
	}
}

func compareJSONFrame(t *testing.T, where string, f *data.Frame, jf jsonFrame) {
	t.Helper()
	s := jf.Schema
	if s.Name != f.Name || s.RefID != f.RefID {
		t.Errorf("%s: name/refId %q/%q, want %q/%q", where, s.Name, s.RefID, f.Name, f.RefID)
	}
	if f.Meta != nil && (s.Meta == nil || s.Meta.Type != string(f.Meta.Type) ||
		!slices.Equal(s.Meta.TypeVersion, []int{int(f.Meta.TypeVersion[0]), int(f.Meta.TypeVersion[1])})) {
		t.Errorf("%s: meta %+v, want type %q version %v", where, s.Meta, f.Meta.Type, f.Meta.TypeVersion)
	}
	if len(s.Fields) != len(f.Fields) || len(jf.Data.Values) != len(f.Fields) {
		t.Errorf("%s: %d schema fields and %d value columns, want %d", where, len(s.Fields), len(jf.Data.Values), len(f.Fields))
		return
	}
	for i, field := range f.Fields {
		js := s.Fields[i]
		if js.Name != field.Name || !data.Labels(js.Labels).Equals(field.Labels) {
			t.Errorf("%s: field %d is %q %v, want %q %v", where, i, js.Name, js.Labels, field.Name, field.Labels)
		}
		if field.Config != nil {
			if js.Config == nil || js.Config.DisplayNameFromDS != field.Config.DisplayNameFromDS ||
				fmt.Sprint(js.Config.Custom["fillBelowTo"]) != fmt.Sprint(field.Config.Custom["fillBelowTo"]) {
				t.Errorf("%s: field %q config %+v, want %+v", where, field.Name, js.Config, field.Config)
			}
		}
		if len(jf.Data.Values[i]) != field.Len() {
			t.Errorf("%s: field %q has %d JSON values, want %d", where, field.Name, len(jf.Data.Values[i]), field.Len())
			continue
		}
		if field.Type() == data.FieldTypeTime && field.Len() > 0 {
			ms, _ := jf.Data.Values[i][0].(float64)
			if want := field.At(0).(time.Time).UnixMilli(); int64(ms) != want {
				t.Errorf("%s: first time %v ms in JSON, want %d", where, jf.Data.Values[i][0], want)
			}
		}
	}
}

// cleanStatus accepts a whole-request failure only as a deliberate gRPC status: not a broken
// connection, not a hang, not grpcio's report of an exception the handler did not catch.
func cleanStatus(t *testing.T, err error) {
	t.Helper()
	st, ok := status.FromError(err)
	switch {
	case !ok:
		t.Errorf("error is not a gRPC status: %v", err)
	case st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded || st.Code() == codes.Canceled:
		t.Errorf("%v: the plugin died or hung", err)
	case st.Code() == codes.Unknown && strings.Contains(st.Message(), "Exception calling application"):
		t.Errorf("uncaught exception in the handler: %v", err)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
