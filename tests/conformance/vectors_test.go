package conformance

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// TestGoldenVectorsRoundTrip: the project's Python codec decodes every frame Grafana's SDK wrote
// (tests/vectors: all field types, nulls, NaN/Inf, enums, JSON, labels, config, meta) and encodes
// it again; Go's SDK must read the Python-written bytes back as the same frame.
func TestGoldenVectorsRoundTrip(t *testing.T) {
	src := os.Getenv("TOTO_VECTORS_DIR")
	if src == "" {
		src = filepath.Join(repoRoot, "tests", "vectors", "grafana-plugin-sdk-go")
	}
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("no golden vectors at %s: %v", src, err)
	}
	out := t.TempDir()
	python := filepath.Join(repoRoot, ".venv", "bin", "python")
	if raw, err := exec.Command(python, "testdata/reencode.py", src, out).CombinedOutput(); err != nil {
		t.Fatalf("re-encode with the Python codec: %v\n%s", err, raw)
	}

	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var compared int
	for _, e := range entries {
		for i, golden := range goldenFrames(t, filepath.Join(src, e.Name())) {
			name := fmt.Sprintf("%s.%d.arrow", e.Name(), i)
			want, err := data.UnmarshalArrowFrame(golden)
			if err != nil {
				t.Fatalf("%s: the SDK cannot read its own vector: %v", name, err)
			}
			raw, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Errorf("%s: not written by the Python codec: %v", name, err)
				continue
			}
			got, err := data.UnmarshalArrowFrame(raw)
			if err != nil {
				t.Errorf("%s: Go cannot read the Python-written frame: %v", name, err)
				continue
			}
			if diff := cmp.Diff(want, got, data.FrameTestCompareOptions()...); diff != "" {
				t.Errorf("%s: the frame changed through the Python codec (-SDK +Python):\n%s", name, diff)
			}
			compared++
		}
	}
	if compared < 10 {
		t.Errorf("compared %d frames, want every golden frame", compared)
	}
}

// goldenFrames reads an Arrow file, or the FRAME=<base64> lines of an SDK golden response dump.
func goldenFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasSuffix(path, ".arrow"):
		return [][]byte{raw}
	case strings.HasSuffix(path, ".txt"):
		var frames [][]byte
		for _, line := range strings.Split(string(raw), "\n") {
			if b64, ok := strings.CutPrefix(line, "FRAME="); ok {
				b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				frames = append(frames, b)
			}
		}
		return frames
	}
	return nil
}
