package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// The share of CPU spent instantiating modules comes from a CPU profile
// of the server (Go's runtime/pprof, through MILLRACE_PPROF_ADDR) taken
// during the measured window. A sample counts as instantiation when its
// stack passes through wazero's Runtime.InstantiateModule, or when it was
// taken in JIT-compiled guest code: the Go profiler cannot unwind native
// code it did not generate and files such samples under
// runtime._ExternalCode with no stack, and in the server the only such
// code is wazero's compiled guests, which run inside InstantiateModule
// (modules are WASI commands: instantiating runs _start, so this is the
// Go guest runtime's start-up and the module's own work together).
const (
	fnInstantiate = "github.com/tetratelabs/wazero.(*runtime).InstantiateModule"
	fnInvoke      = "github.com/millrace/millrace/server/sandbox.(*wazeroModule).Invoke"
	fnExternal    = "runtime._ExternalCode"
)

// gcFunctions are the roots of the garbage collector's background work.
// Instances allocate their linear memory from the Go heap, so much of
// this is the price of fresh instances too, but it cannot be attributed
// sample by sample.
var gcFunctions = map[string]bool{"runtime.gcBgMarkWorker": true, "runtime.bgsweep": true, "runtime.bgscavenge": true}

// cpuShares splits a CPU profile's samples (weighted by CPU time).
type cpuShares struct {
	Samples int64   `json:"samples"`
	Total   float64 `json:"total_s"`
	// Instantiate: under InstantiateModule, or in guest code.
	Instantiate float64 `json:"instantiate_share"`
	// Guest: in JIT-compiled guest code alone (part of Instantiate).
	Guest float64 `json:"guest_code_share"`
	// Sandbox: all of the sandbox's Invoke (instantiation, host calls,
	// limits, results) plus guest code.
	Sandbox float64 `json:"sandbox_share"`
	// GC: the garbage collector's background workers.
	GC float64 `json:"gc_background_share"`
}

// profile is the part of a pprof profile (profile.proto) the shares need.
type profile struct {
	sampleTypes [][2]int64          // (type, unit) string indexes
	samples     []sample            // locations leaf first, values
	locations   map[uint64][]uint64 // location id: function ids, innermost inlined first
	functions   map[uint64]int64    // function id: name string index
	strings     []string
}

type sample struct {
	locations []uint64
	values    []int64
}

// analyzeProfile computes the shares from a profile as /debug/pprof/profile
// serves it (gzipped protobuf).
func analyzeProfile(gz []byte) (*cpuShares, error) {
	p, err := parseProfile(gz)
	if err != nil {
		return nil, err
	}
	// Go writes two values per stack: "samples count" and "cpu
	// nanoseconds"; shares are of CPU time.
	vi, ci := -1, -1
	for i, st := range p.sampleTypes {
		switch {
		case p.str(st[0]) == "cpu" && p.str(st[1]) == "nanoseconds":
			vi = i
		case p.str(st[0]) == "samples" && p.str(st[1]) == "count":
			ci = i
		}
	}
	if vi < 0 {
		return nil, errors.New("the profile has no cpu nanoseconds values: not a CPU profile")
	}
	var s cpuShares
	var total, inst, guest, sandbox, gc int64
	for _, smp := range p.samples {
		if vi >= len(smp.values) {
			continue
		}
		v := smp.values[vi]
		var leaf string
		var underInst, underInvoke, underGC bool
		for li, loc := range smp.locations {
			for fi, fn := range p.locations[loc] {
				name := p.str(p.functions[fn])
				if li == 0 && fi == 0 {
					leaf = name
				}
				switch {
				case name == fnInstantiate:
					underInst = true
				case name == fnInvoke:
					underInvoke = true
				case gcFunctions[name]:
					underGC = true
				}
			}
		}
		isGuest := leaf == fnExternal
		if ci >= 0 && ci < len(smp.values) {
			s.Samples += smp.values[ci]
		}
		total += v
		if underInst || isGuest {
			inst += v
		}
		if isGuest {
			guest += v
		}
		if underInvoke || isGuest {
			sandbox += v
		}
		if underGC {
			gc += v
		}
	}
	if total == 0 {
		return nil, errors.New("the CPU profile has no samples")
	}
	t := float64(total)
	s.Total = t / 1e9
	s.Instantiate, s.Guest, s.Sandbox, s.GC = float64(inst)/t, float64(guest)/t, float64(sandbox)/t, float64(gc)/t
	return &s, nil
}

func (p *profile) str(i int64) string {
	if i < 0 || i >= int64(len(p.strings)) {
		return ""
	}
	return p.strings[i]
}

// parseProfile decodes the fields of profile.proto the shares need
// (github.com/google/pprof/proto/profile.proto): a few dozen lines with
// protowire rather than a new module dependency.
func parseProfile(gz []byte) (*profile, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, 512<<20))
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	p := &profile{locations: map[uint64][]uint64{}, functions: map[uint64]int64{}}
	err = eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, msg []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType: // sample_type
			var st [2]int64
			err := eachField(msg, func(n protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
				if n == 1 || n == 2 {
					st[n-1] = int64(v)
				}
				return nil
			})
			p.sampleTypes = append(p.sampleTypes, st)
			return err
		case num == 2 && typ == protowire.BytesType: // sample
			var s sample
			err := eachField(msg, func(n protowire.Number, t protowire.Type, v uint64, packed []byte) error {
				switch n {
				case 1:
					return repeatedVarint(t, v, packed, func(x uint64) { s.locations = append(s.locations, x) })
				case 2:
					return repeatedVarint(t, v, packed, func(x uint64) { s.values = append(s.values, int64(x)) })
				}
				return nil
			})
			p.samples = append(p.samples, s)
			return err
		case num == 4 && typ == protowire.BytesType: // location
			var id uint64
			var fns []uint64
			err := eachField(msg, func(n protowire.Number, t protowire.Type, v uint64, line []byte) error {
				switch {
				case n == 1:
					id = v
				case n == 4 && t == protowire.BytesType: // line
					return eachField(line, func(n protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
						if n == 1 {
							fns = append(fns, v)
						}
						return nil
					})
				}
				return nil
			})
			p.locations[id] = fns
			return err
		case num == 5 && typ == protowire.BytesType: // function
			var id uint64
			var name int64
			err := eachField(msg, func(n protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
				switch n {
				case 1:
					id = v
				case 2:
					name = int64(v)
				}
				return nil
			})
			p.functions[id] = name
			return err
		case num == 6 && typ == protowire.BytesType: // string_table
			p.strings = append(p.strings, string(msg))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return p, nil
}

// eachField calls f for each field of a message: varints and fixed
// numbers in v, length-delimited contents in b.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		var val []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		case protowire.BytesType:
			val, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, val); err != nil {
			return err
		}
	}
	return nil
}

// repeatedVarint reads a repeated integer field in either encoding:
// packed (one length-delimited run) or one varint per element. Go's
// runtime/pprof uses both, by length.
func repeatedVarint(typ protowire.Type, v uint64, packed []byte, add func(uint64)) error {
	if typ == protowire.VarintType {
		add(v)
		return nil
	}
	for len(packed) > 0 {
		x, n := protowire.ConsumeVarint(packed)
		if n < 0 {
			return protowire.ParseError(n)
		}
		add(x)
		packed = packed[n:]
	}
	return nil
}
