package conformance

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// promServer is a real Prometheus (Debian's package, which `make test` installs) on 127.0.0.1 with
// backfilled history: the source "prometheus" of the plugin reads it.
type promServer struct {
	url string
	end time.Time // the last sample of every backfilled series (an hour mark in the past)
}

// promSeries are the backfilled series: a daily wave per instance, one sample a minute for six
// hours ending at promServer.end.
var promSeries = map[string]float64{"a": 100, "b": 200}

const promMetric = "toto_conformance_load"

// startPrometheus backfills promSeries with promtool, starts Prometheus on a free port and waits
// until /-/ready answers; the test's cleanup stops it.
func startPrometheus(t *testing.T) promServer {
	t.Helper()
	prometheus, err1 := exec.LookPath("prometheus")
	promtool, err2 := exec.LookPath("promtool")
	if err1 != nil || err2 != nil {
		t.Fatal("prometheus and promtool are not installed: install Debian's prometheus package (run.sh and make test do)")
	}
	dir := t.TempDir()
	// An hour before the current hour: the history lies wholly in backfilled blocks.
	end := time.Now().Truncate(time.Hour).Add(-time.Hour)
	var om strings.Builder
	fmt.Fprintf(&om, "# TYPE %s gauge\n", promMetric)
	for instance, base := range promSeries {
		for ts := end.Add(-6 * time.Hour); !ts.After(end); ts = ts.Add(time.Minute) {
			value := base + 20*math.Sin(2*math.Pi*float64(ts.Unix()%86400)/86400)
			fmt.Fprintf(&om, "%s{instance=%q,job=\"conformance\"} %.3f %d\n", promMetric, instance, value, ts.Unix())
		}
	}
	om.WriteString("# EOF\n")
	source := filepath.Join(dir, "history.om")
	if err := os.WriteFile(source, []byte(om.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", source, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool backfill: %v\n%s", err, out)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("global:\n  scrape_interval: 1m\nscrape_configs: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; attempt < 3; attempt++ { // a port taken between choosing and binding: try another
		port := freePort(t)
		cmd := exec.Command(prometheus, "--config.file="+config, "--storage.tsdb.path="+data,
			"--storage.tsdb.retention.time=3650d", fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
		log := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting prometheus: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		if waitReady(url, exited, 30*time.Second) {
			t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
			return promServer{url: url, end: end}
		}
		_ = cmd.Process.Kill()
		<-exited
		t.Logf("prometheus attempt %d did not become ready: %s", attempt, log.tail())
	}
	t.Fatal("prometheus did not become ready")
	return promServer{}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitReady polls /-/ready until it answers 200, the process exits or the deadline passes; between
// polls it waits on the process, so a server that dies ends the wait at once.
func waitReady(url string, exited <-chan struct{}, within time.Duration) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.After(within)
	for {
		if resp, err := client.Get(url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-deadline:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
