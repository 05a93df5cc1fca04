package toolpolicy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFilterWriter(t *testing.T) {
	list := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"rm_rf"},{"name":"echo"}]}}`
	filtered := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}]}}`
	tests := []struct {
		name       string
		maxResp    int64
		header     map[string]string
		status     int // 0: no WriteHeader call
		body       string
		wantStatus int
		wantBody   string
		wantErr    error
	}{
		{"JSON filtered", 0, map[string]string{"Content-Type": "application/json; charset=utf-8", "Content-Length": "80"}, 200, list, 200, filtered, nil},
		{"implicit 200", 0, map[string]string{"Content-Type": "application/json"}, 0, list, 200, filtered, nil},
		{"SSE filtered", 0, map[string]string{"Content-Type": "text/event-stream"}, 200, "data: " + list + "\n\n", 200, "data: " + filtered + "\n\n", nil},
		{"error status untouched", 0, map[string]string{"Content-Type": "application/json"}, 500, list, 500, list, nil},
		{"mislabelled list still filtered", 0, map[string]string{"Content-Type": "text/plain"}, 200, list, 200, filtered, nil},
		{"unlabelled non-JSON refused", 0, nil, 200, "<html>rm_rf</html>", 502, "", ErrBadResponse},
		{"compressed refused", 0, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, 200, list, 502, "", ErrBadResponse},
		{"compressed SSE refused", 0, map[string]string{"Content-Type": "text/event-stream", "Content-Encoding": "br"}, 200, list, 502, "", ErrBadResponse},
		{"too large", 40, map[string]string{"Content-Type": "application/json"}, 200, list, 502, "", ErrResponseTooLarge},
		{"unreadable", 0, map[string]string{"Content-Type": "application/json"}, 200, `{"result":{"tools":[`, 502, "", ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := sseFilter(t, DefaultMaxResponseBytes)
			if tt.maxResp > 0 {
				f.p.maxResponse = tt.maxResp
			}
			rec := httptest.NewRecorder()
			fw := f.Wrap(rec)
			for k, v := range tt.header {
				fw.Header().Set(k, v)
			}
			if tt.status != 0 {
				fw.WriteHeader(tt.status)
			}
			// In two writes, as a proxy copies.
			_, err1 := fw.Write([]byte(tt.body[:len(tt.body)/2]))
			_, err2 := fw.Write([]byte(tt.body[len(tt.body)/2:]))
			fw.Flush()
			err := fw.Finish()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Finish = %v (writes %v, %v), want %v", err, err1, err2, tt.wantErr)
				}
			} else if err != nil || err1 != nil || err2 != nil {
				t.Errorf("errors %v %v %v", err1, err2, err)
			}
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			got := rec.Body.String()
			if tt.wantStatus == 502 {
				if strings.Contains(got, "rm_rf") || rec.Header().Get("Content-Encoding") != "" {
					t.Errorf("a refused answer leaked: %q %v", got, rec.Header())
				}
				return
			}
			if got != tt.wantBody {
				t.Errorf("body %q, want %q", got, tt.wantBody)
			}
			if cl := rec.Header().Get("Content-Length"); tt.status == 200 && strings.HasPrefix(tt.header["Content-Type"], "application/json") && cl != "61" {
				t.Errorf("Content-Length %q after filtering", cl)
			}
			if strings.HasPrefix(tt.header["Content-Type"], "text/event-stream") && !rec.Flushed {
				t.Error("the SSE event was not flushed")
			}
		})
	}
}

func TestFilterWriterUnwrap(t *testing.T) {
	rec := httptest.NewRecorder()
	fw := sseFilter(t, DefaultMaxResponseBytes).Wrap(rec)
	if fw.Unwrap() != http.ResponseWriter(rec) {
		t.Error("Unwrap does not return the client's writer")
	}
	fw.WriteHeader(http.StatusAccepted)
	fw.Flush()
	if !rec.Flushed || rec.Code != http.StatusAccepted {
		t.Errorf("an unfiltered answer: flushed %v, code %d", rec.Flushed, rec.Code)
	}
}
