// Command otlpdesc writes the descriptors of OTLP's metrics messages, and
// of what they import, as a FileDescriptorSet, for protoc's
// --descriptor_set_in. They come from go.opentelemetry.io/proto/otlp, the
// module the generated code links against, so the .proto that protoc sees
// and the Go types can never be two different OTLP versions.
//
// Usage: go run ./plugins/proto/internal/otlpdesc FILE
package main

import (
	"fmt"
	"os"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: otlpdesc FILE")
		os.Exit(2)
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(metricspb.File_opentelemetry_proto_metrics_v1_metrics_proto)
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err == nil {
		err = os.WriteFile(os.Args[1], data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlpdesc:", err)
		os.Exit(1)
	}
}
