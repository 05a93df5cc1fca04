package mcpstdio

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"
)

// This file sends a process's stderr to Caddy's log: one entry per line, with the user id,
// every token value of that process replaced by [REDACTED], lines cut to maxStderrLine bytes,
// and at most stderr_bytes_per_minute bytes a minute (the rest is counted, not logged).

const (
	// maxStderrLine is the longest line logged; longer lines are cut.
	maxStderrLine = 1024
	// maxStderrRead is the most read of one line; the rest of a longer line is skipped.
	maxStderrRead = 64 * 1024
	// redacted replaces a secret in a logged line.
	redacted = "[REDACTED]"
	// minSecretLen: shorter expanded values are not redacted (redacting "1" or "" would
	// mangle every line); tokens are far longer.
	minSecretLen = 4
)

type stderrLogger struct {
	logger  *zap.Logger
	secrets []string
	perMin  int
	now     func() time.Time

	windowStart time.Time
	used        int
	dropped     int
}

func newStderrLogger(logger *zap.Logger, secrets []string, perMin int, now func() time.Time) *stderrLogger {
	var s []string
	for _, v := range secrets {
		if len(v) >= minSecretLen {
			s = append(s, v)
		}
	}
	return &stderrLogger{logger: logger, secrets: s, perMin: perMin, now: now}
}

// run logs r line by line until EOF, then closes r.
func (l *stderrLogger) run(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 4096)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= maxStderrRead {
			line = append(line, chunk...)
		} else if len(line) < maxStderrRead {
			line = append(line, chunk[:maxStderrRead-len(line)]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(line) > 0 {
			l.logLine(line, len(line) >= maxStderrRead)
		}
		line = line[:0]
		if err != nil {
			break
		}
	}
	if l.dropped > 0 {
		l.flushDropped()
	}
}

// redact replaces every secret in line. When the line was cut, a trailing piece that could be
// the start of a secret is removed too, so a cut never reveals part of a token.
func (l *stderrLogger) redact(line string, cut bool) string {
	for _, s := range l.secrets {
		line = strings.ReplaceAll(line, s, redacted)
	}
	if cut {
		for _, s := range l.secrets {
			for k := len(s) - 1; k > 0; k-- {
				if strings.HasSuffix(line, s[:k]) {
					line = line[:len(line)-k]
					break
				}
			}
		}
	}
	return line
}

func (l *stderrLogger) logLine(raw []byte, cut bool) {
	raw = bytes.TrimRight(raw, "\r\n")
	text := l.redact(string(raw), cut)
	if len(text) > maxStderrLine {
		text, cut = text[:maxStderrLine], true
	}
	now := l.now()
	if now.Sub(l.windowStart) >= time.Minute {
		if l.dropped > 0 {
			l.flushDropped()
		}
		l.windowStart, l.used = now, 0
	}
	if l.used+len(text) > l.perMin {
		l.dropped++
		return
	}
	l.used += len(text)
	fields := []zap.Field{zap.String("line", text)}
	if cut {
		fields = append(fields, zap.Bool("truncated", true))
	}
	l.logger.Info("stdio MCP server stderr", fields...)
}

func (l *stderrLogger) flushDropped() {
	l.logger.Warn("stdio MCP server stderr over its limit; lines not logged", zap.Int("lines", l.dropped))
	l.dropped = 0
}
