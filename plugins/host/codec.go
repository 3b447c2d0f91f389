package host

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// recvCodec is gRPC's proto codec that remembers whether a response
// failed to unmarshal: gRPC reports that as an INTERNAL status, which a
// plugin may also send on its own, and the host must tell a plugin that
// answers garbage from one that reports an error. One is made per call.
type recvCodec struct {
	encoding.CodecV2
	unmarshalErr error
}

func newRecvCodec() *recvCodec {
	return &recvCodec{CodecV2: encoding.GetCodecV2(proto.Name)}
}

// Unmarshal implements encoding.CodecV2.
func (c *recvCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err != nil {
		c.unmarshalErr = err
	}
	return err
}
