package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// placement says which CPUs each side of the benchmark runs on. With
// -pin (the default), Caddy gets CPUs of its own and the load generator,
// the fake issuer and the backend share the others, so that Caddy is the
// one bottleneck and its throughput is 1 / (its CPU time per request):
// the ratios then compare what Caddy does per request in (b), (c) and (d)
// instead of how the scheduler shares cores between the load generator and
// the server it loads. Without -pin every process may run on every CPU.
type placement struct {
	caddy []int // CPUs for Caddy; nil: not pinned
	rest  []int // CPUs for the load generator, the issuer and the backend
}

// planPlacement gives Caddy the upper half of allowed (at least one CPU) and
// the rest the lower half. It needs at least two CPUs.
func planPlacement(allowed []int) (placement, error) {
	if len(allowed) < 2 {
		return placement{}, fmt.Errorf("-pin needs at least 2 CPUs, this process may use %d; run with -pin=false", len(allowed))
	}
	half := len(allowed) / 2
	return placement{caddy: allowed[len(allowed)-half:], rest: allowed[:len(allowed)-half]}, nil
}

// allowedCPUs lists the CPUs this process may run on, in order.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cpus []int
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// pinSelf restricts every thread of this process to cpus and sets
// GOMAXPROCS to match. Threads created later inherit the mask of the thread
// that creates them, so a few passes over /proc/self/task catch them all.
func pinSelf(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for pass := 0; pass < 10; pass++ {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := false
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &cur); err != nil {
				continue // the thread has exited
			}
			if cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setaffinity: %w", err)
			}
			changed = true
		}
		if !changed {
			runtime.GOMAXPROCS(len(cpus))
			return nil
		}
	}
	return errors.New("pin: threads kept appearing with another CPU mask")
}

// pinnedCommand returns the command that runs bin on cpus: util-linux's
// taskset sets the mask before bin starts, so the Go runtime in bin sees it
// from its first thread and sizes GOMAXPROCS by it.
func pinnedCommand(cpus []int, bin string, args []string) (string, []string, error) {
	if cpus == nil {
		return bin, args, nil
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return "", nil, errors.New("-pin needs the taskset command (Debian package util-linux); install it or run with -pin=false")
	}
	return ts, append([]string{"-c", cpuList(cpus), bin}, args...), nil
}

// cpuList spells cpus as taskset's list: "0,1".
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// describe is the placement as the report states it.
func (p placement) describe() string {
	if p.caddy == nil {
		return "not pinned (-pin=false): the load generator, Caddy and the backend share every CPU"
	}
	return fmt.Sprintf("Caddy pinned to CPU %s (GOMAXPROCS %d); load generator, issuer and backend on CPU %s",
		cpuList(p.caddy), len(p.caddy), cpuList(p.rest))
}

// placeSelf plans the placement over the CPUs this process may use and
// pins this process to the load generator's share of them.
func placeSelf() (placement, error) {
	cpus, err := allowedCPUs()
	if err != nil {
		return placement{}, err
	}
	pl, err := planPlacement(cpus)
	if err != nil {
		return placement{}, err
	}
	return pl, pinSelf(pl.rest)
}
