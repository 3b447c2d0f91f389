package logging_test

import (
	"context"
	"log/slog"
	"time"
)

// withoutTime zeroes records' times so that examples print the same line
// every time (slog's text handler leaves a zero time out).
type withoutTime struct{ slog.Handler }

func (h withoutTime) Handle(ctx context.Context, r slog.Record) error {
	r.Time = time.Time{}
	return h.Handler.Handle(ctx, r)
}
