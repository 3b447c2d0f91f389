package host

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// callCodec is gRPC's proto codec for one call, with two changes.
//
// It sends a request that is already encoded: Marshal of the call's
// placeholder message returns the encoded bytes as they are, without a
// copy, so that an export's snapshot goes onto the wire straight from
// wire.MarshalExportRequest, never built as OTLP messages. The bytes are
// a standard protobuf encoding of the placeholder's type, so the plugin
// sees no difference. (The placeholder is all an interceptor would see of
// the request; the host installs none.)
//
// It remembers whether a response failed to unmarshal: gRPC reports that
// as an INTERNAL status, which a plugin may also send on its own, and the
// host must tell a plugin that answers garbage from one that reports an
// error.
//
// One is made per call.
type callCodec struct {
	encoding.CodecV2
	placeholder  any
	encoded      []byte
	unmarshalErr error
}

// newCallCodec returns the codec of a call whose request is placeholder,
// sent as encoded, its protobuf encoding.
func newCallCodec(placeholder any, encoded []byte) *callCodec {
	return &callCodec{CodecV2: encoding.GetCodecV2(proto.Name), placeholder: placeholder, encoded: encoded}
}

// Marshal implements encoding.CodecV2.
func (c *callCodec) Marshal(v any) (mem.BufferSlice, error) {
	if v == c.placeholder {
		return mem.BufferSlice{mem.SliceBuffer(c.encoded)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal implements encoding.CodecV2.
func (c *callCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err != nil {
		c.unmarshalErr = err
	}
	return err
}
