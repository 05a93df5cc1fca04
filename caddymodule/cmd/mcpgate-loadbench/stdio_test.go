package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestParseStatPPID(t *testing.T) {
	tests := []struct {
		line string
		want int
		ok   bool
	}{
		{"1234 (mcpbackend) S 77 1234 1234 0 -1 4194560 370", 77, true},
		{"1234 (a ) b (c) S 42 1 1", 42, true}, // a name with spaces and parentheses
		{"1234 mcpbackend S 77", 0, false},
		{"1234 (x) S", 0, false},
		{"1234 (x) S notanumber", 0, false},
	}
	for _, tt := range tests {
		got, err := parseStatPPID(tt.line)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%q: %d, %v; want %d (ok %v)", tt.line, got, err, tt.want, tt.ok)
		}
	}
}

func TestKBField(t *testing.T) {
	s := "Rss:   2048 kB\nPss:    1024 kB\nBad: 12 MB\n"
	if n, err := kBField(s, "Pss"); err != nil || n != 1024<<10 {
		t.Fatalf("Pss: %d, %v", n, err)
	}
	if _, err := kBField(s, "Bad"); err == nil {
		t.Error("MB unit accepted")
	}
	if _, err := kBField(s, "Swap"); err == nil {
		t.Error("missing line accepted")
	}
}

// TestChildrenMemory builds a fake /proc: two children of 100, one
// grandchild, one other process, one that has no status (ended), and a
// non-process entry.
func TestChildrenMemory(t *testing.T) {
	root := t.TempDir()
	procs := []struct {
		pid, ppid int
		rssKB     int
		pssKB     int // 0: no smaps_rollup
		noStatus  bool
	}{
		{100, 1, 50000, 40000, false},
		{201, 100, 10000, 6000, false},
		{202, 100, 14000, 0, false},
		{203, 100, 9999, 0, true},
		{301, 201, 7000, 7000, false},
		{400, 1, 8000, 8000, false},
	}
	for _, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(p.pid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name, s string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("stat", strconv.Itoa(p.pid)+" (srv) S "+strconv.Itoa(p.ppid)+" 1 1 0")
		if !p.noStatus {
			write("status", "Name:\tsrv\nVmHWM:\t"+strconv.Itoa(p.rssKB+1)+" kB\nVmRSS:\t"+strconv.Itoa(p.rssKB)+" kB\n")
		}
		if p.pssKB > 0 {
			write("smaps_rollup", "Rss: 1 kB\nPss:  "+strconv.Itoa(p.pssKB)+" kB\n")
		}
	}
	if err := os.Mkdir(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	cm, err := childrenMemory(root, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := childMemory{N: 2, RSS: (10000 + 14000) << 10, PSS: 6000 << 10}
	if cm != want {
		t.Fatalf("got %+v, want %+v", cm, want)
	}
	if got := cm.perChild(cm.RSS); got != 12000<<10 {
		t.Errorf("per child %d", got)
	}
	if none, err := childrenMemory(root, 999); err != nil || none.N != 0 || none.perChild(none.RSS) != 0 {
		t.Errorf("no children: %+v, %v", none, err)
	}
}
