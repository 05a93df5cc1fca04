package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// What the benchmark reads about the Caddy process while it runs: memory
// and CPU time from /proc, the live heap and profiles from its admin API.

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

// startProfile fetches Caddy's CPU profile and its alloc, mutex and block
// deltas for about d in the background, into dir/caddy-<name>-<kind>.pprof;
// the returned func waits for all four. The mutex and block profiles are
// empty unless Caddy records them (see recordContention).
func startProfile(ctx context.Context, admin, dir, name string, d time.Duration, logf func(string, ...any)) func() {
	secs := max(1, int(d/time.Second)-1)
	kinds := []string{"profile", "allocs", "mutex", "block"}
	done := make(chan struct{}, len(kinds))
	fetch := func(kind string) {
		defer func() { done <- struct{}{} }()
		url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", admin, kind, secs)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			logf("profile %s: %v", kind, err)
			return
		}
		defer resp.Body.Close()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			logf("profile: %v", err)
			return
		}
		f, err := os.Create(fmt.Sprintf("%s/caddy-%s-%s.pprof", dir, name, kind))
		if err != nil {
			logf("profile: %v", err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil || resp.StatusCode != 200 {
			logf("profile %s: status %d, %v", kind, resp.StatusCode, err)
		}
	}
	for _, k := range kinds {
		go fetch(k)
	}
	return func() {
		for range kinds {
			<-done
		}
	}
}
