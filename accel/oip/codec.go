package oip

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// InferRequest is a decoded inference request.
type InferRequest struct {
	ID     string
	Inputs []Tensor
	// Outputs names the outputs wanted, in order; none means all of them.
	Outputs []RequestedOutput
	// BinaryOutput is the default for outputs that do not say themselves
	// (the request's binary_data_output parameter).
	BinaryOutput bool
}

// RequestedOutput is one output an inference request asks for.
type RequestedOutput struct {
	Name string
	// Binary, when set, says whether this output comes back as binary
	// data (its binary_data parameter); nil means the request's default.
	Binary *bool
}

// WantsBinary reports whether output name should come back as binary data.
func (r *InferRequest) WantsBinary(name string) bool {
	for _, o := range r.Outputs {
		if o.Name == name && o.Binary != nil {
			return *o.Binary
		}
	}
	return r.BinaryOutput
}

// InferResponse is a decoded inference response.
type InferResponse struct {
	ModelName    string
	ModelVersion string
	ID           string
	Outputs      []Tensor
}

// Output returns the output called name.
func (r *InferResponse) Output(name string) (Tensor, bool) {
	for _, t := range r.Outputs {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// ParseInferRequest decodes an inference request body. headerLength is the
// Inference-Header-Content-Length header's value, empty when the body is
// JSON only. Tensor data is checked against each tensor's own datatype
// and shape; checking them against a model is the caller's job. Binary
// tensor data is not copied: the tensors' Data alias body.
//
// Every error describes a fault of the request (a client error).
func ParseInferRequest(headerLength string, body []byte) (*InferRequest, error) {
	header, bin, err := splitBody(headerLength, body)
	if err != nil {
		return nil, err
	}
	var w wireRequest
	if err := json.Unmarshal(header, &w); err != nil {
		return nil, fmt.Errorf("malformed inference request JSON: %v", err)
	}
	if len(w.Inputs) == 0 {
		return nil, errors.New(`inference request has no "inputs"`)
	}
	req := &InferRequest{ID: w.ID}
	if req.BinaryOutput, err = boolParam(w.Parameters, paramBinaryDataOutput, "request"); err != nil {
		return nil, err
	}
	if req.Inputs, err = decodeTensors("input", w.Inputs, bin, int64(len(body))); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, o := range w.Outputs {
		if o.Name == "" {
			return nil, errors.New("a requested output has no name")
		}
		if seen[o.Name] {
			return nil, fmt.Errorf("output %q is requested twice", o.Name)
		}
		seen[o.Name] = true
		ro := RequestedOutput{Name: o.Name}
		if raw, ok := o.Parameters[paramBinaryData]; ok {
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				return nil, fmt.Errorf("output %q: parameter %s must be true or false", o.Name, paramBinaryData)
			}
			ro.Binary = &b
		}
		req.Outputs = append(req.Outputs, ro)
	}
	return req, nil
}

// ParseInferResponse decodes an inference response body (see
// ParseInferRequest for headerLength). Binary output data aliases body.
func ParseInferResponse(headerLength string, body []byte) (*InferResponse, error) {
	header, bin, err := splitBody(headerLength, body)
	if err != nil {
		return nil, err
	}
	var w wireResponse
	if err := json.Unmarshal(header, &w); err != nil {
		return nil, fmt.Errorf("malformed inference response JSON: %v", err)
	}
	outs, err := decodeTensors("output", w.Outputs, bin, int64(len(body)))
	if err != nil {
		return nil, err
	}
	return &InferResponse{ModelName: w.ModelName, ModelVersion: w.ModelVersion, ID: w.ID, Outputs: outs}, nil
}

// EncodeInferRequest encodes req. With binary, input data follows the JSON
// header as binary tensor data: send header then blobs as the body, with
// the Inference-Header-Content-Length header set to len(header). Without,
// the header is the whole body and blobs is empty.
func EncodeInferRequest(req *InferRequest, binary bool) (header []byte, blobs [][]byte, err error) {
	w := wireRequest{ID: req.ID}
	if req.BinaryOutput {
		w.Parameters = map[string]json.RawMessage{paramBinaryDataOutput: json.RawMessage("true")}
	}
	if w.Inputs, blobs, err = encodeTensors(req.Inputs, func(string) bool { return binary }); err != nil {
		return nil, nil, err
	}
	for _, o := range req.Outputs {
		wo := wireOutput{Name: o.Name}
		if o.Binary != nil {
			wo.Parameters = map[string]json.RawMessage{paramBinaryData: json.RawMessage(strconv.FormatBool(*o.Binary))}
		}
		w.Outputs = append(w.Outputs, wo)
	}
	header, err = json.Marshal(&w)
	return header, blobs, err
}

// EncodeInferResponse encodes resp; binary says which outputs go as binary
// tensor data (see EncodeInferRequest for header and blobs).
func EncodeInferResponse(resp *InferResponse, binary func(name string) bool) (header []byte, blobs [][]byte, err error) {
	w := wireResponse{ModelName: resp.ModelName, ModelVersion: resp.ModelVersion, ID: resp.ID}
	if w.Outputs, blobs, err = encodeTensors(resp.Outputs, binary); err != nil {
		return nil, nil, err
	}
	header, err = json.Marshal(&w)
	return header, blobs, err
}

func splitBody(headerLength string, body []byte) (header, bin []byte, err error) {
	if headerLength == "" {
		return body, nil, nil
	}
	n, err := strconv.ParseUint(headerLength, 10, 63)
	if err != nil || n == 0 {
		return nil, nil, fmt.Errorf("malformed %s header %q: want the JSON header's length in bytes", HeaderContentLength, headerLength)
	}
	if n > uint64(len(body)) {
		return nil, nil, fmt.Errorf("malformed %s header: %d exceeds the body's %d bytes", HeaderContentLength, n, len(body))
	}
	return body[:n], body[n:], nil
}

func boolParam(params map[string]json.RawMessage, name, where string) (bool, error) {
	raw, ok := params[name]
	if !ok {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, fmt.Errorf("%s parameter %s must be true or false", where, name)
	}
	return b, nil
}

// decodeTensors turns wire tensors into Tensors, taking binary data from
// bin in order. maxElements bounds every tensor's element count (each
// element takes at least one byte of the body in either encoding).
func decodeTensors(kind string, wts []wireTensor, bin []byte, maxElements int64) ([]Tensor, error) {
	out := make([]Tensor, 0, len(wts))
	seen := map[string]bool{}
	var off int64
	for _, wt := range wts {
		if wt.Name == "" {
			return nil, fmt.Errorf("an %s has no name", kind)
		}
		if seen[wt.Name] {
			return nil, fmt.Errorf("%s %q appears twice", kind, wt.Name)
		}
		seen[wt.Name] = true
		if wt.Datatype == BYTES {
			return nil, fmt.Errorf("%s %q: %w", kind, wt.Name, ErrBytesUnsupported)
		}
		if !wt.Datatype.Valid() {
			return nil, fmt.Errorf("%s %q: unknown datatype %q (want one of BOOL, UINT8…UINT64, INT8…INT64, FP16, FP32, FP64, BF16)", kind, wt.Name, wt.Datatype)
		}
		if wt.Shape == nil {
			return nil, fmt.Errorf("%s %q has no shape", kind, wt.Name)
		}
		count, err := ElementCount(wt.Shape, maxElements)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %v", kind, wt.Name, err)
		}
		want := count * int64(wt.Datatype.Size())
		t := Tensor{Name: wt.Name, Datatype: wt.Datatype, Shape: wt.Shape}
		raw, isBinary := wt.Parameters[paramBinaryDataSize]
		switch {
		case isBinary:
			if len(wt.Data) > 0 {
				return nil, fmt.Errorf("%s %q has both data and %s", kind, wt.Name, paramBinaryDataSize)
			}
			var size uint64
			if err := json.Unmarshal(raw, &size); err != nil {
				return nil, fmt.Errorf("%s %q: parameter %s must be a non-negative integer", kind, wt.Name, paramBinaryDataSize)
			}
			if size != uint64(want) {
				return nil, fmt.Errorf("%s %q: %s is %d bytes, but shape %v of %s needs %d", kind, wt.Name, paramBinaryDataSize, size, wt.Shape, wt.Datatype, want)
			}
			if want > int64(len(bin))-off {
				return nil, fmt.Errorf("%s %q: binary data ends %d bytes short", kind, wt.Name, want-(int64(len(bin))-off))
			}
			t.Data = bin[off : off+want : off+want]
			off += want
		case len(wt.Data) > 0 && !bytes.Equal(wt.Data, []byte("null")):
			if t.Data, err = decodeJSONData(wt.Data, wt.Datatype, count); err != nil {
				return nil, fmt.Errorf("%s %q: %v", kind, wt.Name, err)
			}
		default:
			return nil, fmt.Errorf("%s %q has no data (give \"data\" or the %s parameter)", kind, wt.Name, paramBinaryDataSize)
		}
		out = append(out, t)
	}
	if off != int64(len(bin)) {
		return nil, fmt.Errorf("%d bytes of binary data follow the JSON header, but the %ss' %s add up to %d", len(bin), kind, paramBinaryDataSize, off)
	}
	return out, nil
}

func encodeTensors(ts []Tensor, binary func(string) bool) ([]wireTensor, [][]byte, error) {
	wts := make([]wireTensor, 0, len(ts))
	var blobs [][]byte
	for _, t := range ts {
		wt := wireTensor{Name: t.Name, Shape: t.Shape, Datatype: t.Datatype}
		if wt.Shape == nil {
			wt.Shape = []int64{}
		}
		if binary(t.Name) {
			wt.Parameters = map[string]json.RawMessage{paramBinaryDataSize: json.RawMessage(strconv.Itoa(len(t.Data)))}
			if len(t.Data) > 0 {
				blobs = append(blobs, t.Data)
			}
		} else {
			data, err := appendJSONData(nil, t)
			if err != nil {
				return nil, nil, fmt.Errorf("tensor %q: %v", t.Name, err)
			}
			wt.Data = data
		}
		wts = append(wts, wt)
	}
	return wts, blobs, nil
}

// decodeJSONData parses a JSON array (nested arrays are flattened, in
// row-major order) of exactly count elements of dt into binary layout.
// raw is valid JSON (encoding/json checked it), so the scanner only needs
// to tell values from brackets and commas.
func decodeJSONData(raw []byte, dt Datatype, count int64) ([]byte, error) {
	if dt == FP16 || dt == BF16 {
		return nil, fmt.Errorf("%s data cannot be sent as JSON; send it as binary data (%s)", dt, paramBinaryDataSize)
	}
	size := int64(dt.Size())
	out := make([]byte, 0, count*size)
	var n int64
	for i := 0; i < len(raw); {
		switch c := raw[i]; c {
		case ' ', '\t', '\n', '\r', ',', '[', ']':
			i++
			continue
		case '"', '{':
			return nil, fmt.Errorf("data must hold %s values in (nested) arrays, found %s", dt, quoteToken(raw[i:]))
		}
		j := i
		for j < len(raw) && !isDelim(raw[j]) {
			j++
		}
		if n == count {
			return nil, fmt.Errorf("data has more than the %d elements its shape holds", count)
		}
		var err error
		// The token aliases raw (no allocation per element); appendValue
		// keeps it only inside the error message it formats.
		if out, err = appendValue(out, dt, unsafe.String(&raw[i], j-i)); err != nil {
			return nil, fmt.Errorf("element %d: %v", n, err)
		}
		n++
		i = j
	}
	if n != count {
		return nil, fmt.Errorf("data has %d elements, but its shape holds %d", n, count)
	}
	return out, nil
}

func isDelim(c byte) bool {
	return c == ',' || c == ']' || c == '[' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func quoteToken(b []byte) string {
	if len(b) > 20 {
		b = b[:20]
	}
	return strconv.Quote(string(b))
}

func appendValue(out []byte, dt Datatype, tok string) ([]byte, error) {
	le := binary.LittleEndian
	switch dt {
	case BOOL:
		switch tok {
		case "true":
			return append(out, 1), nil
		case "false":
			return append(out, 0), nil
		}
		return nil, fmt.Errorf("%q is not true or false", tok)
	case FP32, FP64:
		bits := 32
		if dt == FP64 {
			bits = 64
		}
		f, err := strconv.ParseFloat(tok, bits)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, fmt.Errorf("%s is out of range for %s", tok, dt)
			}
			return nil, fmt.Errorf("%q is not a number", tok)
		}
		if dt == FP32 {
			return le.AppendUint32(out, math.Float32bits(float32(f))), nil
		}
		return le.AppendUint64(out, math.Float64bits(f)), nil
	case INT8, INT16, INT32, INT64:
		v, err := strconv.ParseInt(tok, 10, dt.Size()*8)
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid %s", tok, dt)
		}
		return appendUint(out, dt.Size(), uint64(v)), nil
	case UINT8, UINT16, UINT32, UINT64:
		v, err := strconv.ParseUint(tok, 10, dt.Size()*8)
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid %s", tok, dt)
		}
		return appendUint(out, dt.Size(), v), nil
	}
	return nil, fmt.Errorf("datatype %s cannot be sent as JSON", dt)
}

func appendUint(out []byte, size int, v uint64) []byte {
	le := binary.LittleEndian
	switch size {
	case 1:
		return append(out, byte(v))
	case 2:
		return le.AppendUint16(out, uint16(v))
	case 4:
		return le.AppendUint32(out, uint32(v))
	}
	return le.AppendUint64(out, v)
}

// appendJSONData writes t's elements as a flat JSON array.
func appendJSONData(dst []byte, t Tensor) ([]byte, error) {
	size := t.Datatype.Size()
	if size == 0 || t.Datatype == FP16 || t.Datatype == BF16 {
		return nil, fmt.Errorf("%s data cannot be sent as JSON; ask for binary data (%s)", t.Datatype, paramBinaryData)
	}
	if len(t.Data)%size != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(t.Data), t.Datatype)
	}
	le := binary.LittleEndian
	dst = append(dst, '[')
	for i := 0; i < len(t.Data); i += size {
		if i > 0 {
			dst = append(dst, ',')
		}
		b := t.Data[i : i+size]
		switch t.Datatype {
		case BOOL:
			dst = strconv.AppendBool(dst, b[0] != 0)
		case FP32, FP64:
			f, bits := float64(0), 64
			if size == 4 {
				f, bits = float64(math.Float32frombits(le.Uint32(b))), 32
			} else {
				f = math.Float64frombits(le.Uint64(b))
			}
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("element %d is %v, which JSON cannot hold; ask for binary data (%s)", i/size, f, paramBinaryData)
			}
			dst = strconv.AppendFloat(dst, f, 'g', -1, bits)
		case INT8:
			dst = strconv.AppendInt(dst, int64(int8(b[0])), 10)
		case INT16:
			dst = strconv.AppendInt(dst, int64(int16(le.Uint16(b))), 10)
		case INT32:
			dst = strconv.AppendInt(dst, int64(int32(le.Uint32(b))), 10)
		case INT64:
			dst = strconv.AppendInt(dst, int64(le.Uint64(b)), 10)
		case UINT8:
			dst = strconv.AppendUint(dst, uint64(b[0]), 10)
		case UINT16:
			dst = strconv.AppendUint(dst, uint64(le.Uint16(b)), 10)
		case UINT32:
			dst = strconv.AppendUint(dst, uint64(le.Uint32(b)), 10)
		case UINT64:
			dst = strconv.AppendUint(dst, le.Uint64(b), 10)
		}
	}
	return append(dst, ']'), nil
}
