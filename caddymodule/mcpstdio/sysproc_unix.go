//go:build unix

package mcpstdio

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in a process group of its own, so that ending it also ends
// whatever it started (npx runs node as a child).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup signals the child's whole process group: SIGKILL if hard, else SIGTERM.
func killGroup(cmd *exec.Cmd, hard bool) {
	if cmd.Process == nil {
		return
	}
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}
