// Command testbrowser stands in for a person at a browser in tests: given an authorization
// URL as its last argument (as mcpgate-client -open-with passes it), it GETs the URL, follows
// the redirects to the loopback callback and exits 0 when the final page is a 200.
//
// With TESTBROWSER_LOG=file it appends the final status and page title to that file.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testbrowser URL")
		os.Exit(2)
	}
	u := os.Args[len(os.Args)-1]
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get(u)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testbrowser: %v\n", err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	title := ""
	if m := regexp.MustCompile(`<title>([^<]*)</title>`).FindSubmatch(body); m != nil {
		title = string(m[1])
	}
	if p := os.Getenv("TESTBROWSER_LOG"); p != "" {
		if f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintf(f, "%d %s\n", resp.StatusCode, title)
			f.Close()
		}
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "testbrowser: %s answered %d\n", resp.Request.URL.Host, resp.StatusCode)
		os.Exit(1)
	}
}
