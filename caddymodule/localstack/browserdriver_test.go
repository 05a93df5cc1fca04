package localstack_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/testutil"
)

// browser is one headless Chromium for a whole test, driven step by step through
// testdata/node/browser-driver.mjs: each person ("who") has a browser context of their own
// whose cookies last between steps. It is safe for use by one goroutine at a time.
type browser struct {
	in        io.WriteCloser
	answers   chan string
	stderr    *testutil.SyncBuffer
	artifacts string
}

// browserPage is the page a goto or click ended on.
type browserPage struct {
	URL    string `json:"url"`
	Status int    `json:"status"` // of the page's main document
	Title  string `json:"title"`
	Text   string `json:"text"` // the body's visible text, at most 4000 characters
	Error  string `json:"error"`
}

// chromiumPath is Debian's Chromium, or $CHROMIUM.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("this test needs Chromium (Debian's chromium package) at %s", p)
	}
	return p
}

// artifactsDir is where screenshots are kept: $MCPGATE_ARTIFACTS, default bin/e2e-artifacts.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MCPGATE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "bin", "e2e-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startBrowser starts Chromium through the driver in the Node.js project nodeDir; it is closed
// when the test ends.
func startBrowser(t *testing.T, nodeDir string) *browser {
	t.Helper()
	b := &browser{answers: make(chan string, 1), stderr: new(testutil.SyncBuffer), artifacts: artifactsDir(t)}
	cmd := exec.Command("node", "browser-driver.mjs")
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath(t), "SCREENSHOT_DIR="+b.artifacts)
	cmd.Stderr = b.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.in = in
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			b.answers <- sc.Text()
		}
		close(b.answers)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = b.in.Close() // the driver closes Chromium and exits
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("browser driver: %v\n%s", err, b.stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("the browser driver did not exit 20s after its input closed")
		}
	})
	return b
}

// do sends one command and waits for its answer. The driver's own timeouts (30s per Playwright
// action) answer long before the bound here, which only catches a driver that died.
func (b *browser) do(cmd map[string]string) (browserPage, error) {
	line, _ := json.Marshal(cmd)
	if _, err := b.in.Write(append(line, '\n')); err != nil {
		return browserPage{}, fmt.Errorf("browser driver: %v\n%s", err, b.stderr.String())
	}
	select {
	case ans, ok := <-b.answers:
		if !ok {
			return browserPage{}, fmt.Errorf("the browser driver exited\n%s", b.stderr.String())
		}
		var p browserPage
		if err := json.Unmarshal([]byte(ans), &p); err != nil {
			return browserPage{}, fmt.Errorf("browser driver answered %q: %v", ans, err)
		}
		if p.Error != "" {
			return p, fmt.Errorf("browser %s %s: %s", cmd["who"], cmd["op"], p.Error)
		}
		return p, nil
	case <-time.After(2 * time.Minute):
		return browserPage{}, fmt.Errorf("the browser driver did not answer %s in 2 minutes\n%s", cmd["op"], b.stderr.String())
	}
}

// Goto loads url in who's browser.
func (b *browser) Goto(who, url string) (browserPage, error) {
	return b.do(map[string]string{"op": "goto", "who": who, "url": url})
}

// Fill types value into the field selector.
func (b *browser) Fill(who, selector, value string) error {
	_, err := b.do(map[string]string{"op": "fill", "who": who, "selector": selector, "value": value})
	return err
}

// Click clicks selector and waits for the page the navigation ends on.
func (b *browser) Click(who, selector string) (browserPage, error) {
	return b.do(map[string]string{"op": "click", "who": who, "selector": selector})
}

// Shot keeps a screenshot of who's page as <artifacts>/<name>.png.
func (b *browser) Shot(who, name string) error {
	_, err := b.do(map[string]string{"op": "shot", "who": who, "name": name})
	return err
}
