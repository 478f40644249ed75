// A stand-in of ours for github.com/tikv/pd, which the Go module proxy here refuses.
// tidb-operator v1.6.6 uses only pkg/typeutil's ByteSize and Duration from it.
module github.com/tikv/pd

go 1.21

require github.com/docker/go-units v0.5.0
