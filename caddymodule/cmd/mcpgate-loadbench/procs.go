package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// child is a server process started by the benchmark: Caddy or the backend.
// Each runs in its own process so the load generator never shares a Go
// runtime (scheduler, GC) with the server it measures.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string // path of its stderr
}

// startChild runs bin with args, stderr to a file in dir. stdout, if
// wantLine, must print one line (the backend's address), which is returned.
func startChild(name, dir, bin string, args []string, wantLine bool) (*child, string, error) {
	logPath := dir + "/" + name + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	var sc *bufio.Scanner
	if wantLine {
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, "", err
		}
		sc = bufio.NewScanner(out)
	} else {
		cmd.Stdout = logf
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath}
	if !wantLine {
		return c, "", nil
	}
	line := make(chan string, 1)
	go func() {
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			c.stop()
			return nil, "", fmt.Errorf("%s exited without printing its address (see %s)", name, logPath)
		}
		return c, l, nil
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, "", fmt.Errorf("%s printed no address within 30s (see %s)", name, logPath)
	}
}

// stop interrupts the process and waits up to 10s before killing it.
func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// memory is a process's resident memory from /proc, in bytes.
type memory struct{ RSS, HWM int64 }

// readMemory reads VmRSS and VmHWM (peak RSS) of pid.
func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memory{}, err
	}
	return parseStatus(string(b))
}

func parseStatus(s string) (memory, error) {
	var m memory
	found := 0
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", k, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, err
		}
		if k == "VmRSS" {
			m.RSS = n << 10
		} else {
			m.HWM = n << 10
		}
		found++
	}
	if found != 2 {
		return m, errors.New("VmRSS/VmHWM not found in /proc status")
	}
	return m, nil
}

// freePort reserves a loopback port by listening and closing.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers want, or the timeout passes.
func waitHTTP(ctx context.Context, url string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v", url, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// heapInuse is Caddy's live heap: it asks the admin API for a heap profile
// with gc=1 (which runs a garbage collection first, so the number is what
// is retained, not what awaits collection), then reads
// go_memstats_heap_inuse_bytes from the admin /metrics.
func heapInuse(ctx context.Context, admin string) (int64, error) {
	gc, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/heap?gc=1", nil)
	if resp, err := http.DefaultClient.Do(gc); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("admin /metrics: status %d", resp.StatusCode)
	}
	return parseMetric(resp.Body, "go_memstats_heap_inuse_bytes")
}

// parseMetric returns the value of an unlabelled metric in the Prometheus
// text format.
func parseMetric(r io.Reader, name string) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || k != name {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return int64(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// userHZ is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100 on
// Linux for every architecture this runs on).
const userHZ = 100

// processCPU is the user+system CPU time of every thread of pid so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/<pid>/stat line; the command name (field 2) may contain spaces, so
// fields are counted after its closing parenthesis.
func parseStatCPU(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	var ticks int64
	for _, v := range f[11:13] { // fields 14 and 15 overall
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
