package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShortRun runs the whole harness briefly (-short): every benchmark
// behind the table must run and report, every target row must be judged,
// and the table must be saved as the result file.
func TestShortRun(t *testing.T) {
	moduleRoot = "../.."
	dir := t.TempDir()
	var out strings.Builder
	if err := run(&out, 1, true, dir); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	table := out.String()
	for _, what := range []string{
		"÷ its crypto floor", "the check in situ", "local replay protection (by CPU time", "replay protection in Redis (by CPU time",
		"Redis commands per request", "cache miss", "propagation", "memory per cached key", "100 MiB signed upload",
	} {
		line := ""
		for l := range strings.Lines(table) {
			if strings.Contains(l, what) {
				line = l
				break
			}
		}
		switch {
		case line == "":
			t.Errorf("no row %q in the table:\n%s", what, table)
		case !strings.HasSuffix(strings.TrimSpace(line), "| PASS |") && !strings.HasSuffix(strings.TrimSpace(line), "| FAIL |"):
			t.Errorf("row %q not judged: %s", what, line)
		case strings.Contains(line, "NaN") || strings.Contains(line, "Inf"):
			t.Errorf("row %q has a figure that is not a number: %s", what, line)
		}
	}
	if !strings.Contains(table, "SHORT MODE") {
		t.Errorf("a short run's table does not say so:\n%s", table)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil || len(files) != 1 {
		t.Fatalf("result files %v (%v), want one", files, err)
	}
	saved, err := os.ReadFile(files[0])
	if err != nil || string(saved) != table {
		t.Errorf("the result file %s does not hold the printed table (%v)", files[0], err)
	}
}
