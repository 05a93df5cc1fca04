package loopback

import "testing"

func TestHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LocalHost", true},
		{"LOCALHOST", true},
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"127.255.255.255", true},
		{"::1", true},
		{"[::1]", true},
		{"::ffff:127.0.0.1", true},
		{"[::ffff:127.0.0.1]", true},
		{"0:0:0:0:0:0:0:1", true},
		{"", false},
		{"localhost.", false},
		{"foo.localhost", false},
		{"localhost.example.com", false},
		{"128.0.0.1", false},
		{"126.255.255.255", false},
		{"0.0.0.0", false},
		{"::", false},
		{"::2", false},
		{"::ffff:128.0.0.1", false},
		{"fe80::1%lo", false},
		{"127.0.0.1.nip.io", false},
		{"2130706433", false}, // 127.0.0.1 as a decimal integer: not an IP literal in a URL host
		{"0x7f.0.0.1", false},
		{"example.com", false},
	} {
		if got := Host(tc.host); got != tc.want {
			t.Errorf("Host(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestHostPort(t *testing.T) {
	for _, tc := range []struct {
		hostport string
		want     bool
	}{
		{"localhost:8080", true},
		{"LOCALHOST:1", true},
		{"127.0.0.1:443", true},
		{"[::1]:80", true},
		{"[::ffff:127.0.0.1]:80", true},
		{"localhost", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"example.com:80", false},
		{"10.0.0.1:80", false},
		{"[::2]:80", false},
		{"", false},
	} {
		if got := HostPort(tc.hostport); got != tc.want {
			t.Errorf("HostPort(%q) = %v, want %v", tc.hostport, got, tc.want)
		}
	}
}
