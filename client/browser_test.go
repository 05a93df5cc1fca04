package client

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOpenWith(t *testing.T) {
	target := filepath.Join(t.TempDir(), "opened")
	// "touch" receives the URL (here a path) as its last argument.
	if err := OpenWith("touch -c -m")(target); err != nil {
		t.Fatal(err)
	}
	// -c: touch must not create it; now run it for real to see the argument arrives.
	if err := OpenWith("touch")(target); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(target); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not receive the URL as its last argument")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := OpenWith("  ")("x"); err == nil {
		t.Error("empty command accepted")
	}
	mustContain(t, OpenWith("/nonexistent/opener")("x"), "cannot run /nonexistent/opener")
}
