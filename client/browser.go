package client

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// OpenBrowser opens u in the system browser: xdg-open on Linux and the BSDs, open on macOS,
// rundll32 on Windows. It does not wait for the browser.
func OpenBrowser(u string) error {
	var name string
	var args []string
	switch runtime.GOOS {
	case "darwin":
		name, args = "open", []string{u}
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler", u}
	default:
		name, args = "xdg-open", []string{u}
	}
	return startDetached(name, args)
}

// OpenWith returns an opener that runs command (split at spaces; no shell) with the URL as its
// last argument, for -open-with. Its output goes to this process's stderr. It does not wait
// for the command to finish.
func OpenWith(command string) func(string) error {
	return func(u string) error {
		f := strings.Fields(command)
		if len(f) == 0 {
			return errors.New("-open-with names no command")
		}
		return startDetached(f[0], append(f[1:], u))
	}
}

func startDetached(name string, args []string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot run %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }() // reap it; its exit status does not decide the login
	return nil
}
