package jwtverify

import (
	"errors"
	"fmt"
	"testing"
)

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{invalid(reasonExpired, "x"), "expired"},
		{fmt.Errorf("wrapped: %w", invalid(reasonAudience, "x")), "audience"},
		{ErrInvalidToken, "invalid"},
		{errors.New("io"), "other"},
	}
	for _, tc := range tests {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
		if tc.err != nil && tc.want != "other" && !errors.Is(tc.err, ErrInvalidToken) {
			t.Errorf("%v does not wrap ErrInvalidToken", tc.err)
		}
	}
}
