package layout

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docCitation matches a pointer to a document of the repository, such as
// "(docs/request-check.md)", "see docs/replay-protection.md#restarts" or
// "README.md", read from the module's root.
var docCitation = regexp.MustCompile(`\b(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.md\b`)

// contractCitation matches a pointer to the product contract the
// developers work from (its name, as in "<name> §7"), which is not part of
// the repository. The name is spelled in two halves so that this file does
// not cite it.
var contractCitation = regexp.MustCompile(`\bSP` + `EC\b`)

// TestCitedDocsExist fails when a source file, the Makefile, a script or an
// example cites a document (docs/…, README.md, the developers' contract)
// that the repository lacks, so that every comment a maintainer follows
// leads somewhere.
func TestCitedDocsExist(t *testing.T) {
	root := moduleRoot(t)
	cited := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !citesDocs(d.Name()) {
			return nil
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if contractCitation.Match(text) {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s cites the developers' contract, which the repository lacks: cite docs/ instead", rel)
		}
		for _, doc := range docCitation.FindAllString(string(text), -1) {
			cited++
			if _, err := os.Stat(filepath.Join(root, doc)); err != nil {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s cites %s, which the repository lacks", rel, doc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cited == 0 {
		t.Fatal("no file cites a document: the walk missed the tree")
	}
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// citesDocs tells the files whose comments may cite docs/.
func citesDocs(name string) bool {
	switch filepath.Ext(name) {
	case ".go", ".sh", ".js", ".yml", ".json":
		return true
	}
	return name == "Makefile"
}
