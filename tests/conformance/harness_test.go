// Package conformance drives the built Grafana plugin (grafana-plugin/dist) the way Grafana does:
// hashicorp/go-plugin starts the executable with Grafana's handshake and a Grafana >= 12.4
// environment, and the SDK's pluginv2 clients call it. Frames are decoded with the SDK and checked
// with grafana/dataplane's readers, the libraries Grafana itself runs.
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

const pluginID = "toto-forecast-datasource"

var (
	repoRoot   string // the repository (two levels up from this package)
	pluginDir  string // grafana-plugin/dist/<id> (`make plugin`), or TOTO_PLUGIN_DIR
	executable string // <pluginDir>/<plugin.json executable>_linux_<arch>
	modelDir   string // the random-weight checkpoint `make tiny-model` writes
	shared     *pluginProcess
)

func TestMain(m *testing.M) {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		panic(err)
	}
	pluginDir = filepath.Join(repoRoot, "grafana-plugin", "dist", pluginID)
	if v := os.Getenv("TOTO_PLUGIN_DIR"); v != "" {
		pluginDir = v
	}
	modelDir = filepath.Join(repoRoot, "var", "checkpoints", "toto-2.0-4m-random")
	if v := os.Getenv("TOTO_CONFORMANCE_MODEL"); v != "" {
		modelDir = v
	}
	// A host variable the plugin must not see: Grafana >= 12.4 does not forward the host env.
	os.Setenv("CONFORMANCE_HOST_ONLY", "1")
	code := m.Run()
	if shared != nil {
		shared.client.Kill()
	}
	os.Exit(code)
}

// pluginJSON reads the built plugin.json and resolves the executable like Grafana does:
// <plugin dir>/<executable>_<GOOS>_<GOARCH>.
func pluginJSON(t testing.TB) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(pluginDir, "plugin.json"))
	if err != nil {
		t.Fatalf("%v (build the plugin first: grafana-plugin/build.sh)", err)
	}
	var pj map[string]any
	if err := json.Unmarshal(raw, &pj); err != nil {
		t.Fatalf("plugin.json: %v", err)
	}
	return pj
}

func executablePath(t testing.TB) string {
	t.Helper()
	if executable == "" {
		prefix, _ := pluginJSON(t)["executable"].(string)
		executable = filepath.Join(pluginDir, fmt.Sprintf("%s_%s_%s", prefix, runtime.GOOS, strings.ToLower(runtime.GOARCH)))
	}
	if _, err := os.Stat(executable); err != nil {
		t.Fatalf("plugin executable: %v", err)
	}
	if _, err := os.Stat(modelDir); err != nil {
		t.Fatalf("test checkpoint: %v (write it with `make tiny-model`)", err)
	}
	return executable
}

// grafanaEnv is what Grafana >= 12.4 gives a plugin process (host env skipped, so no PATH or
// HOME): Grafana's own GF_* variables plus [plugin.toto-forecast-datasource] settings as
// GF_PLUGIN_<KEY>. go-plugin adds its cookie and PLUGIN_* variables itself.
func grafanaEnv(extra ...string) []string {
	env := []string{
		"GF_VERSION=12.4.0",
		"GF_EDITION=Open Source",
		"GF_PLUGIN_MODEL=" + modelDir, // grafana.ini: model = <dir>
		"GF_PLUGIN_DEVICE=cpu",
	}
	return append(env, extra...)
}

// pluginProcess is one started plugin with the clients Grafana dispenses (grpcplugin/client_v2.go).
type pluginProcess struct {
	client *goplugin.Client
	pid    int
	log    *syncBuffer
	diag   grpcplugin.DiagnosticsClient
	data   grpcplugin.DataClient
	res    grpcplugin.ResourceClient
}

// launch starts the executable with the ClientConfig Grafana's plugin manager builds
// (pkg/plugins/backendplugin/grpcplugin/client.go): the SDK's handshake constants, protocol
// version 2 only, gRPC only, SkipHostEnv, cmd.Env = env.
func launch(t testing.TB, env []string, args ...string) *pluginProcess {
	t.Helper()
	return launchExecutable(t, executablePath(t), env, args...)
}

// launchExecutable starts any plugin executable (another installed folder's launcher) the same way.
func launchExecutable(t testing.TB, path string, env []string, args ...string) *pluginProcess {
	t.Helper()
	p, err := tryLaunch(path, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log (pid %d):\n%s", p.pid, p.log.tail())
		}
	})
	return p
}

// tryLaunch is launch that returns go-plugin's error (a launcher that cannot reach its server).
func tryLaunch(path string, env []string, args ...string) (*pluginProcess, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Dir = os.TempDir() // Grafana's working directory is its own, never the plugin's source
	logBuf := &syncBuffer{}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		Cmd: cmd,
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{
			grpcplugin.ProtocolVersion: {
				"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
				"resource":    &grpcplugin.ResourceGRPCPlugin{},
				"data":        &grpcplugin.DataGRPCPlugin{},
				"stream":      &grpcplugin.StreamGRPCPlugin{},
				"admission":   &grpcplugin.AdmissionGRPCPlugin{},
				"conversion":  &grpcplugin.ConversionGRPCPlugin{},
			},
		},
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "plugin." + pluginID, Output: logBuf, Level: hclog.Debug,
		}),
	})
	p := &pluginProcess{client: client, log: logBuf}
	rpc, err := client.Client() // starts the process, reads the handshake line, dials
	if err != nil {
		client.Kill()
		return p, fmt.Errorf("start plugin: %v\n%s", err, logBuf.tail())
	}
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	if v := client.NegotiatedVersion(); v != grpcplugin.ProtocolVersion {
		return p, fmt.Errorf("negotiated protocol version %d, Grafana requires %d", v, grpcplugin.ProtocolVersion)
	}
	for name, into := range map[string]func(any){
		"diagnostics": func(raw any) { p.diag = raw.(grpcplugin.DiagnosticsClient) },
		"resource":    func(raw any) { p.res = raw.(grpcplugin.ResourceClient) },
		"data":        func(raw any) { p.data = raw.(grpcplugin.DataClient) },
	} {
		raw, err := rpc.Dispense(name)
		if err != nil {
			return p, fmt.Errorf("dispense %s: %v", name, err)
		}
		into(raw)
	}
	return p, nil
}

// sharedPlugin is one plugin process reused by the tests that only send requests.
func sharedPlugin(t *testing.T) *pluginProcess {
	t.Helper()
	if shared == nil || shared.client.Exited() {
		shared = launch(t, grafanaEnv())
		waitHealthy(t, shared)
	}
	return shared
}

// waitHealthy polls CheckHealth until the plugin reports OK: the model loads after the handshake.
func waitHealthy(t testing.TB, p *pluginProcess) *pluginv2.CheckHealthResponse {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := p.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pluginContext(true)})
		cancel()
		if err == nil && resp.Status == pluginv2.CheckHealthResponse_OK {
			return resp
		}
		if p.client.Exited() {
			t.Fatalf("plugin exited while starting\n%s", p.log.tail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin not healthy after 3 minutes: resp=%v err=%v", resp, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// alive reports whether the process with this PID still exists (and is not a zombie).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

// descendants lists the PIDs whose parent chain leads to pid.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var child int
		if _, err := fmt.Sscan(e.Name(), &child); err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		var ppid int
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 {
			fmt.Sscan(fields[1], &ppid)
		}
		parent[child] = ppid
	}
	var out []int
	for child := range parent {
		for p := parent[child]; p > 1; p = parent[p] {
			if p == pid {
				out = append(out, child)
				break
			}
		}
	}
	return out
}

func cmdline(pid int) string {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.Join(strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00"), " ")
}

// pluginContext is what Grafana sends for a data source created from the provisioning example.
// withUser=false is the alerting case (backend-initiated requests carry no user).
func pluginContext(withUser bool) *pluginv2.PluginContext {
	pc := backend.PluginContext{
		OrgID:         1,
		PluginID:      pluginID,
		PluginVersion: "0.1.0",
		GrafanaConfig: backend.NewGrafanaCfg(map[string]string{"GF_APP_URL": "http://localhost:3000/"}),
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: "toto", Type: pluginID, Name: "Toto Forecast",
			JSONData: json.RawMessage(`{"maxSeries":500}`),
			Updated:  time.UnixMilli(1_700_000_000_000),
		},
	}
	if withUser {
		pc.User = &backend.User{Login: "admin", Name: "admin", Email: "admin@localhost", Role: "Admin"}
	}
	return backend.ToProto().PluginContext(pc)
}

// query builds a DataQuery the way Grafana's /api/ds/query does (pkg/services/query/query.go):
// the whole query model as JSON, plus refId, maxDataPoints, interval and the absolute time range.
func query(refID string, from, to time.Time, model map[string]any) *pluginv2.DataQuery {
	q := map[string]any{
		"refId":         refID,
		"datasource":    map[string]string{"type": pluginID, "uid": "toto"},
		"intervalMs":    60000,
		"maxDataPoints": 1000,
	}
	for k, v := range model {
		q[k] = v
	}
	raw, err := json.Marshal(q)
	if err != nil {
		panic(err)
	}
	queryType, _ := q["queryType"].(string)
	return backend.ToProto().DataQuery(backend.DataQuery{
		RefID:         refID,
		QueryType:     queryType,
		MaxDataPoints: int64(toFloat(q["maxDataPoints"])),
		Interval:      time.Duration(toFloat(q["intervalMs"])) * time.Millisecond,
		TimeRange:     backend.TimeRange{From: from, To: to},
		JSON:          raw,
	})
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

// inlineSeries makes n points of a smooth series at step ending at end (epoch ms timestamps).
func inlineSeries(name string, labels map[string]string, end time.Time, step time.Duration, n int) map[string]any {
	ts := make([]int64, n)
	vals := make([]float64, n)
	for i := range n {
		t := end.Add(-time.Duration(n-1-i) * step)
		ts[i] = t.UnixMilli()
		vals[i] = 100 + 20*float64(i%60)/60 + float64(len(name))
	}
	return map[string]any{"name": name, "labels": labels, "timestamps": ts, "values": vals}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 8000 {
		s = "…" + s[len(s)-8000:]
	}
	return s
}
