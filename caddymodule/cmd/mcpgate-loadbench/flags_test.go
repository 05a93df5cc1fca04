package main

import (
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	var sb strings.Builder
	c, err := parseFlags([]string{"-conc", "1,8", "-users", "1,10", "-c", "4", "-load", "0.1, 1"}, &sb)
	if err != nil || len(c.ConcList) != 2 || c.Users[1] != 10 || c.Conc != 4 || len(c.Loads) != 2 || c.Loads[0] != 0.1 || c.Loads[1] != 1 {
		t.Fatalf("parse: %+v, %v", c, err)
	}
	if c, err := parseFlags([]string{"-scan-only"}, &sb); err != nil || !c.ScanOnly || c.MainOnly {
		t.Fatalf("-scan-only: %+v, %v", c, err)
	}
	if c, err := parseFlags(nil, &sb); err != nil || len(c.Loads) != 2 || c.Loads[0] != 0.25 || c.Loads[1] != 0.5 || c.Rounds != 60 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	if c, err := parseFlags([]string{"-stdio-only", "-stdio-users", "5", "-mcpbackend", "/x/mcpbackend"}, &sb); err != nil || !c.StdioOnly || c.StdioUsers != 5 || c.MCPBackend != "/x/mcpbackend" {
		t.Fatalf("-stdio-only: %+v, %v", c, err)
	}
	if c, err := parseFlags([]string{"-policy-only"}, &sb); err != nil || !c.PolicyOnly || c.StdioOnly {
		t.Fatalf("-policy-only: %+v, %v", c, err)
	}
	if c, err := parseFlags([]string{"-policy-only", "-instructions", "10"}, &sb); err != nil || !c.PolicyOnly || c.Instructions != 10 {
		t.Fatalf("-policy-only -instructions: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"-policy-only", "-stdio-only"}, {"-main-only", "-instructions", "10"}, {"-main-only", "-policy-only"}, {"-stdio-only", "-scan-only"}, {"-stdio-only", "-instructions", "10"}, {"-stdio-users", "0"}, {"-conc", "0"}, {"-users", "x"}, {"-c", "0"}, {"-rounds", "0"}, {"-load", "0"}, {"-load", "1.5"}, {"-load", "0.5,"}, {"-load", "NaN"}, {"-main-only", "-scan-only"}, {"-instructions-conc", "0"}} {
		if _, err := parseFlags(bad, &sb); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
