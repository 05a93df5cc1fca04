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

func TestDumpTotal(t *testing.T) {
	dump := "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 11671442\n\nfn=(1) main\n3 5\ntotals: 11671442\n"
	if n, err := dumpTotal(strings.NewReader(dump)); err != nil || n != 11671442 {
		t.Fatalf("dumpTotal = %d, %v", n, err)
	}
	if _, err := dumpTotal(strings.NewReader("events: Ir\nfn=(1) main\n")); err == nil {
		t.Fatal("a dump without totals was read as complete")
	}
	if _, err := dumpTotal(strings.NewReader("totals: x\n")); err == nil {
		t.Fatal("a non-numeric total was accepted")
	}
}

func TestCallgrindCommandNamesTheTool(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, _, err := callgrindCommand(t.TempDir(), "/bin/caddy", nil); err == nil || !strings.Contains(err.Error(), "valgrind") {
		t.Fatalf("without valgrind: %v, want an error naming valgrind", err)
	}
}

func TestCountPicker(t *testing.T) {
	p := countPicker(3, "tok")
	for range 3 {
		if tok, ok := p.next(); !ok || tok != "tok" {
			t.Fatalf("next = %q %v", tok, ok)
		}
	}
	if _, ok := p.next(); ok {
		t.Fatal("count picker did not stop after 3")
	}
	if tok, ok := countPicker(1, "").next(); !ok || tok != "" {
		t.Fatal("count picker without token")
	}
}
