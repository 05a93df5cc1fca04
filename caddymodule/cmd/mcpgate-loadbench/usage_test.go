package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    memory
		wantErr bool
	}{
		{"both", "Name:\tcaddy\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n", memory{RSS: 1 << 20, HWM: 2 << 20}, false},
		{"missing", "Name:\tcaddy\nVmRSS:\t  1024 kB\n", memory{}, true},
		{"bad unit", "VmHWM:\t2 MB\nVmRSS:\t1 kB\n", memory{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus(tt.in)
			if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
	m, err := readMemory(os.Getpid())
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS {
		t.Fatalf("own memory %+v, %v", m, err)
	}
}

func TestParseMetric(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"# HELP x\ngo_memstats_heap_inuse_bytes 1.2345e+07\n", 12345000, false},
		{"go_memstats_heap_inuse_bytes_total 5\n", 0, true},
		{"go_memstats_heap_inuse_bytes x\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseMetric(strings.NewReader(tt.in), "go_memstats_heap_inuse_bytes")
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseMetric(%q) = %d, %v", tt.in, got, err)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"1234 (caddy) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0", 2 * time.Second, false},
		{"1234 (my prog) x) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0", 30 * time.Millisecond, false},
		{"1234 caddy", 0, true},
		{"1234 (caddy) S 1 2", 0, true},
	}
	for _, tt := range tests {
		got, err := parseStatCPU(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseStatCPU(%q) = %v, %v", tt.in, got, err)
		}
	}
	if d, err := processCPU(os.Getpid()); err != nil || d < 0 {
		t.Fatalf("own CPU %v, %v", d, err)
	}
}
