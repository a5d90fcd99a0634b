// Command protojson_check proves that golden files are byte for byte what Go's protojson writes.
//
// Usage: protojson_check DESCRIPTORS GOLDEN...
//
// DESCRIPTORS is a serialized google.protobuf.FileDescriptorSet holding the OTLP .proto files (the Python side
// writes it from the opentelemetry-proto package's descriptors), so no generated OTLP Go code is needed: the
// messages are dynamicpb messages. Each GOLDEN is read into the message our writer (recorder/span_file.py)
// wrote there: a "*.logs.json" file is an opentelemetry.proto.logs.v1.LogsData, any other file an
// opentelemetry.proto.trace.v1.Span. It is then marshalled again with
// protojson.MarshalOptions{Multiline: true, Indent: "  "}, and Go's bytes plus one "\n" (Go ends its output at
// the closing brace; our files end with a newline) must equal the file's bytes.
//
// Prints one line per file that differs or cannot be read ("DIFFERS path: line N: ours ..., go ...",
// "ERROR path: ..."), then a summary line. Exit status: 0 when every file is byte-identical, 1 otherwise,
// 2 on a usage or descriptor error.
package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	_ "unsafe" // for go:linkname

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// protojson adds a space after some colons when internal/detrand.Bool() is true, and detrand seeds itself
// from a hash of the running binary, so whether a build adds the space is a coin toss per build. Disable
// sets the seed to 0, making Bool() always false: the output is then Go's plain form. The package is
// internal, so it is reached by go:linkname (allowed for functions in Go 1.19; the empty detrand.s file
// lets the compiler accept these bodiless declarations). init of this package runs after detrand's own
// package init (which computes the seed), so the seed stays 0.
//
//go:linkname detrandDisable google.golang.org/protobuf/internal/detrand.Disable
func detrandDisable()

//go:linkname detrandBool google.golang.org/protobuf/internal/detrand.Bool
func detrandBool() bool

func init() {
	detrandDisable()
	if detrandBool() {
		panic("internal/detrand is still enabled: protojson output would not be stable")
	}
}

const (
	spanMessage = "opentelemetry.proto.trace.v1.Span"
	logsMessage = "opentelemetry.proto.logs.v1.LogsData"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: protojson_check DESCRIPTORS GOLDEN...")
		os.Exit(2)
	}
	span, logs, err := loadMessages(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(2)
	}
	paths := os.Args[2:]
	bad := 0
	for _, path := range paths {
		descriptor := span
		if strings.HasSuffix(path, ".logs.json") {
			descriptor = logs
		}
		if problem := check(path, descriptor); problem != "" {
			fmt.Println(problem)
			bad++
		}
	}
	fmt.Printf("%d of %d files byte-identical to Go protojson\n", len(paths)-bad, len(paths))
	if bad > 0 {
		os.Exit(1)
	}
}

// loadMessages reads the FileDescriptorSet and finds the two message types goldens hold.
func loadMessages(path string) (span, logs protoreflect.MessageDescriptor, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	set := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(raw, set); err != nil {
		return nil, nil, err
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, nil, err
	}
	found := map[string]protoreflect.MessageDescriptor{}
	for _, name := range []string{spanMessage, logsMessage} {
		descriptor, err := files.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return nil, nil, err
		}
		message, ok := descriptor.(protoreflect.MessageDescriptor)
		if !ok {
			return nil, nil, fmt.Errorf("%s is not a message", name)
		}
		found[name] = message
	}
	return found[spanMessage], found[logsMessage], nil
}

// check returns "" when the file is exactly Go's multiline protojson of its message plus "\n", else why not.
func check(path string, descriptor protoreflect.MessageDescriptor) string {
	ours, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("ERROR %s: %v", path, err)
	}
	message := dynamicpb.NewMessage(descriptor)
	if err := protojson.Unmarshal(ours, message); err != nil {
		return fmt.Sprintf("ERROR %s: protojson.Unmarshal as %s: %v", path, descriptor.FullName(), err)
	}
	theirs, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(message)
	if err != nil {
		return fmt.Sprintf("ERROR %s: protojson.Marshal: %v", path, err)
	}
	theirs = append(theirs, '\n')
	if bytes.Equal(ours, theirs) {
		return ""
	}
	return fmt.Sprintf("DIFFERS %s: %s", path, firstDifference(ours, theirs))
}

// firstDifference names the first line where the two texts part, quoting both.
func firstDifference(ours, theirs []byte) string {
	ourLines, theirLines := strings.Split(string(ours), "\n"), strings.Split(string(theirs), "\n")
	for i := 0; i < len(ourLines) || i < len(theirLines); i++ {
		our, their := lineAt(ourLines, i), lineAt(theirLines, i)
		if our != their {
			return fmt.Sprintf("line %d: ours %q, go %q", i+1, our, their)
		}
	}
	return "same lines, different bytes"
}

func lineAt(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<end of file>"
}
