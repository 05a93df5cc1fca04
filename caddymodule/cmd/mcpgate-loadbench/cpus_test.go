package main

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPlanPlacement(t *testing.T) {
	tests := []struct {
		allowed     []int
		caddy, rest []int
		err         bool
	}{
		{[]int{0}, nil, nil, true},
		{nil, nil, nil, true},
		{[]int{0, 1}, []int{1}, []int{0}, false},
		{[]int{0, 1, 2}, []int{2}, []int{0, 1}, false},
		{[]int{0, 1, 2, 3}, []int{2, 3}, []int{0, 1}, false},
		{[]int{2, 5, 7, 9}, []int{7, 9}, []int{2, 5}, false},
	}
	for _, tt := range tests {
		p, err := planPlacement(tt.allowed)
		if (err != nil) != tt.err {
			t.Fatalf("%v: err %v", tt.allowed, err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "-pin=false") {
				t.Errorf("error %q does not say how to run without pinning", err)
			}
			continue
		}
		if !reflect.DeepEqual(p.caddy, tt.caddy) || !reflect.DeepEqual(p.rest, tt.rest) {
			t.Errorf("%v: caddy %v rest %v, want %v %v", tt.allowed, p.caddy, p.rest, tt.caddy, tt.rest)
		}
	}
	if got := cpuList([]int{0, 3}); got != "0,3" {
		t.Errorf("cpuList = %q", got)
	}
}

func TestPinnedCommand(t *testing.T) {
	bin, args, err := pinnedCommand(nil, "/bin/caddy", []string{"run"})
	if err != nil || bin != "/bin/caddy" || !reflect.DeepEqual(args, []string{"run"}) {
		t.Fatalf("unpinned: %q %q %v", bin, args, err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, _, err := pinnedCommand([]int{1}, "/bin/caddy", nil); err == nil || !strings.Contains(err.Error(), "taskset") {
		t.Fatalf("without taskset: %v, want an error naming taskset", err)
	}
}

// TestPinSelf pins every thread of the test process to one CPU, checks each
// thread's mask, and restores the original set.
func TestPinSelf(t *testing.T) {
	allowed, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) < 2 {
		t.Fatalf("this test needs 2 CPUs to see pinning change anything; the process may use %v", allowed)
	}
	t.Cleanup(func() {
		if err := pinSelf(allowed); err != nil {
			t.Errorf("restore: %v", err)
		}
	})
	if err := pinSelf(allowed[:1]); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		tid, _ := strconv.Atoi(e.Name())
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue
		}
		if set.Count() != 1 || !set.IsSet(allowed[0]) {
			t.Errorf("thread %d may run on %d CPUs, want only CPU %d", tid, set.Count(), allowed[0])
		}
	}
}

func TestRoundOrderAndRatios(t *testing.T) {
	if got := roundOrder(3, 0); !reflect.DeepEqual(got, []int{0, 1, 2}) {
		t.Errorf("even round %v", got)
	}
	if got := roundOrder(3, 1); !reflect.DeepEqual(got, []int{2, 1, 0}) {
		t.Errorf("odd round %v", got)
	}
	x := []result{{Reqs: 100, Elapsed: 1e9}, {Reqs: 200, Elapsed: 1e9}}
	y := []result{{Reqs: 90, Elapsed: 1e9}, {Reqs: 300, Elapsed: 1e9}}
	if got := pairedRatios(x, y); !reflect.DeepEqual(got, []float64{0.9, 1.5}) {
		t.Errorf("pairedRatios %v", got)
	}
	if got := median([]float64{1, 2, 3}); got != 2 {
		t.Errorf("median odd %v", got)
	}
	if got := median([]float64{1, 2, 3, 5}); got != 2.5 {
		t.Errorf("median even %v", got)
	}
	if shortName("(b') reverse_proxy") != "(b')" || shortName("x") != "x" {
		t.Error("shortName")
	}
}
