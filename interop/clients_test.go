package interop

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/enforcement"
)

// Helpers shared by the tests of the clients of other vendors.

// answer is what a client got back.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, body}
}

// mustPass fails unless a passed the gateway and the upstream saw method
// and body; it returns what the upstream saw.
func (a answer) mustPass(t *testing.T, method string, body []byte) echoed {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", a.status, a.body)
	}
	var seen echoed
	if err := json.Unmarshal(a.body, &seen); err != nil {
		t.Fatalf("upstream answer %q: %v", a.body, err)
	}
	sum := sha256.Sum256(body)
	if seen.Method != method || seen.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("upstream saw %+v, want method %s and the body intact", seen, method)
	}
	if seen.AccessKeyID == "" {
		t.Errorf("upstream saw no X-Access-Key-Id")
	}
	return seen
}

// mustDeny fails unless a is the gateway's 401 with reason and challenge.
func (a answer) mustDeny(t *testing.T, reason, challenge string) {
	t.Helper()
	var denied enforcement.DenialBody
	if a.status != http.StatusUnauthorized || json.Unmarshal(a.body, &denied) != nil || denied.Error.Reason != reason {
		t.Fatalf("status %d body %s, want 401 %s", a.status, a.body, reason)
	}
	if got := a.header.Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate = %q, want %q", got, challenge)
	}
}

// runCurl runs the real curl with args and returns its answer.
func runCurl(t *testing.T, args ...string) answer {
	t.Helper()
	dir := t.TempDir()
	headers, body := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
	cmd := exec.Command("curl", append([]string{"-sS", "-D", headers, "-o", body, "-w", "%{http_code}"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %q: %v %s", args, err, exitStderr(err))
	}
	status, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("curl status %q", out)
	}
	raw, _ := os.ReadFile(headers)
	h := http.Header{}
	for _, line := range strings.Split(string(raw), "\n") {
		if name, value, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			h.Add(name, strings.TrimSpace(value))
		}
	}
	data, _ := os.ReadFile(body)
	return answer{status, h, data}
}

func exitStderr(err error) string {
	if e, ok := err.(*exec.ExitError); ok {
		return string(e.Stderr)
	}
	return ""
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
