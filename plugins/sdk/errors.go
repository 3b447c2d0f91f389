package sdk

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// InvalidArgument marks err, returned by Export, as the request's fault: a
// bad option or a snapshot the format cannot hold. Sextant reports it as
// INVALID_ARGUMENT and does not count it against the plugin's health.
// Wrapping the result (fmt.Errorf("...: %w", ...)) keeps the mark. It
// returns nil for a nil err.
func InvalidArgument(err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: codes.InvalidArgument, err: err}
}

// Unavailable marks err, returned by Export, as a destination that is down
// or unreachable, which may work if tried again later. Sextant reports it
// as UNAVAILABLE. Wrapping the result keeps the mark. It returns nil for a
// nil err.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: codes.Unavailable, err: err}
}

// codedError carries a gRPC code; status.FromError finds it through
// wrapping, by its GRPCStatus method.
type codedError struct {
	code codes.Code
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }

func (e *codedError) Unwrap() error { return e.err }

// GRPCStatus makes the error a gRPC status with its code.
func (e *codedError) GRPCStatus() *status.Status { return status.New(e.code, e.err.Error()) }

// toStatus turns an error from a plugin's code into the status the host
// sees: INTERNAL for a panic, the code it was marked with (or a status it already is), the
// context's code when the call's context ended, INTERNAL otherwise. The
// message is always the whole error text.
func toStatus(ctx context.Context, err error) error {
	msg := err.Error()
	var p *panicError
	if errors.As(err, &p) {
		return status.Error(codes.Internal, msg)
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return status.Error(s.Code(), msg)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	case ctx.Err() != nil:
		return status.Error(status.FromContextError(ctx.Err()).Code(), msg)
	}
	return status.Error(codes.Internal, msg)
}
