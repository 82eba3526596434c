package sdxl_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/millrace/millrace/accel/internal/testenv"
	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
)

var ortOnce sync.Once

// initORT starts the real ONNX Runtime from build/cache once per process.
func initORT(t testing.TB) {
	t.Helper()
	lib := testenv.LibraryPath(t)
	var err error
	ortOnce.Do(func() {
		if !ort.IsInitialized() {
			ort.SetSharedLibraryPath(lib)
			err = ort.InitializeEnvironment()
		}
	})
	require.NoError(t, err)
}

// sig is one declared input or output: -1 marks a dynamic dimension.
type sig struct {
	name string
	typ  ort.TensorElementDataType
	dims []int64
}

const (
	f32 ort.TensorElementDataType = ort.TensorElementDataTypeFloat
	f16 ort.TensorElementDataType = ort.TensorElementDataTypeFloat16
	i32 ort.TensorElementDataType = ort.TensorElementDataTypeInt32
	i64 ort.TensorElementDataType = ort.TensorElementDataTypeInt64
)

func hiddenStates(n int, typ ort.TensorElementDataType, hidden int64) []sig {
	var out []sig
	for k := 0; k <= n; k++ {
		out = append(out, sig{"hidden_states." + itoa(k), typ, []int64{-1, -1, hidden}})
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// wantSignatures is each part's inputs and outputs as Optimum exports them.
func wantSignatures(v sdxl.Variant) map[string][2][]sig {
	ft, idt := f32, i32
	timestep := sig{"timestep", f32, []int64{}}
	latentOut := sig{"latent_sample", f32, []int64{-1, 4, -1, -1}}
	if v == sdxl.FP16 {
		ft, idt = f16, i64
		timestep = sig{"timestep", i64, []int64{-1}}
		latentOut = sig{"latent_parameters", f32, []int64{-1, 8, -1, -1}}
	}
	ids := []sig{{"input_ids", idt, []int64{-1, -1}}}
	return map[string][2][]sig{
		"text_encoder": {ids, append([]sig{
			{"last_hidden_state", ft, []int64{-1, -1, sdxl.TextHidden}},
			{"pooler_output", ft, []int64{-1, sdxl.TextHidden}},
		}, hiddenStates(sdxl.TextLayers, ft, sdxl.TextHidden)...)},
		"text_encoder_2": {ids, append([]sig{
			{"text_embeds", ft, []int64{-1, sdxl.Projection}},
			{"last_hidden_state", ft, []int64{-1, -1, sdxl.Text2Hidden}},
		}, hiddenStates(sdxl.Text2Layers, ft, sdxl.Text2Hidden)...)},
		"unet": {{
			{"sample", ft, []int64{-1, 4, -1, -1}},
			timestep,
			{"encoder_hidden_states", ft, []int64{-1, -1, sdxl.CrossAttention}},
			{"text_embeds", ft, []int64{-1, sdxl.Projection}},
			{"time_ids", ft, []int64{-1, 6}},
		}, {{"out_sample", ft, []int64{-1, 4, -1, -1}}}},
		"vae_decoder": {{{"latent_sample", f32, []int64{-1, 4, -1, -1}}}, {{"sample", f32, []int64{-1, 3, -1, -1}}}},
		"vae_encoder": {{{"sample", f32, []int64{-1, 3, -1, -1}}}, {latentOut}},
	}
}

func TestSignatures(t *testing.T) {
	initORT(t)
	for _, v := range []sdxl.Variant{sdxl.FP32, sdxl.FP16} {
		t.Run(string(v), func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, sdxl.Write(dir, sdxl.Options{Variant: v}))
			for part, want := range wantSignatures(v) {
				ins, outs, err := ort.GetInputOutputInfo(filepath.Join(dir, part, "model.onnx"))
				require.NoError(t, err, part)
				require.Equal(t, want[0], signatures(ins), part+" inputs")
				require.Equal(t, want[1], signatures(outs), part+" outputs")
			}
			for _, f := range []string{"model_index.json", "scheduler/scheduler_config.json", "unet/model.onnx_data", "text_encoder_2/model.onnx_data",
				"tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
				"tokenizer_2/vocab.json", "tokenizer_2/merges.txt", "tokenizer_2/special_tokens_map.json", "tokenizer_2/tokenizer_config.json",
				"unet/config.json", "vae_decoder/config.json", "text_encoder/config.json", "text_encoder_2/config.json"} {
				require.FileExists(t, filepath.Join(dir, f))
			}
			var pad struct {
				Pad string `json:"pad_token"`
			}
			b, err := os.ReadFile(filepath.Join(dir, "tokenizer_2/special_tokens_map.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &pad))
			require.Equal(t, "!", pad.Pad)
		})
	}
}

func signatures(infos []ort.InputOutputInfo) []sig {
	var out []sig
	for _, in := range infos {
		dims := []int64{}
		for _, d := range in.Dimensions {
			dims = append(dims, d)
		}
		out = append(out, sig{in.Name, in.DataType, dims})
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a, err := sdxl.Files(sdxl.Options{Variant: sdxl.FP16, HeavyMatMuls: 1})
	require.NoError(t, err)
	b, err := sdxl.Files(sdxl.Options{Variant: sdxl.FP16, HeavyMatMuls: 1})
	require.NoError(t, err)
	require.Equal(t, a, b)
	_, err = sdxl.Files(sdxl.Options{Variant: "bf16"})
	require.ErrorContains(t, err, "bf16")
}

// runner runs one part of a folder with ONNX Runtime, outputs
// preallocated with the shapes the test expects (fp16 ones included,
// which onnxruntime_go cannot allocate itself) and returned as float32.
type runner struct {
	t   *testing.T
	dir string
	v   sdxl.Variant
}

type tensor struct {
	shape []int64
	data  []float32 // ints are stored as float32 too, converted per the declared type
}

func (r runner) run(part string, inputs map[string]tensor, outputs map[string][]int64) map[string][]float32 {
	t := r.t
	t.Helper()
	path := filepath.Join(r.dir, part, "model.onnx")
	ins, outs, err := ort.GetInputOutputInfo(path)
	require.NoError(t, err)
	var inNames, outNames []string
	var inVals, outVals []ort.Value
	defer func() {
		for _, v := range append(inVals, outVals...) {
			v.Destroy()
		}
	}()
	for _, in := range ins {
		x, ok := inputs[in.Name]
		require.True(t, ok, "no value for input %s", in.Name)
		inNames = append(inNames, in.Name)
		inVals = append(inVals, value(t, in.DataType, x))
	}
	for _, out := range outs {
		shape, ok := outputs[out.Name]
		if !ok {
			continue
		}
		outNames = append(outNames, out.Name)
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v, err := ort.NewCustomDataTensor(ort.Shape(shape), make([]byte, n*int64(size(out.DataType))), out.DataType)
		require.NoError(t, err)
		outVals = append(outVals, v)
	}
	require.Len(t, outNames, len(outputs), "unknown output names in %v", outputs)
	sess, err := ort.NewDynamicAdvancedSession(path, inNames, outNames, nil)
	require.NoError(t, err)
	defer sess.Destroy()
	require.NoError(t, sess.Run(inVals, outVals))
	result := map[string][]float32{}
	for i, name := range outNames {
		cv := outVals[i].(*ort.CustomDataTensor)
		result[name] = floats(ort.TensorElementDataType(cv.DataType()), cv.GetData())
	}
	return result
}

func size(dt ort.TensorElementDataType) int {
	switch dt {
	case f16:
		return 2
	case i64:
		return 8
	}
	return 4
}

func value(t *testing.T, dt ort.TensorElementDataType, x tensor) ort.Value {
	var err error
	var v ort.Value
	if len(x.shape) == 0 {
		require.Equal(t, f32, dt, "only float scalars here")
		v, err = ort.NewScalar(x.data[0])
		require.NoError(t, err)
		return v
	}
	var buf bytes.Buffer
	for _, f := range x.data {
		switch dt {
		case f32:
			binary.Write(&buf, binary.LittleEndian, f)
		case f16:
			binary.Write(&buf, binary.LittleEndian, toHalf(f))
		case i32:
			binary.Write(&buf, binary.LittleEndian, int32(f))
		case i64:
			binary.Write(&buf, binary.LittleEndian, int64(f))
		}
	}
	v, err = ort.NewCustomDataTensor(ort.Shape(x.shape), buf.Bytes(), dt)
	require.NoError(t, err)
	return v
}

func floats(dt ort.TensorElementDataType, b []byte) []float32 {
	var out []float32
	switch dt {
	case f16:
		for i := 0; i+1 < len(b); i += 2 {
			out = append(out, fromHalf(binary.LittleEndian.Uint16(b[i:])))
		}
	default:
		for i := 0; i+3 < len(b); i += 4 {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
		}
	}
	return out
}

// toHalf rounds f to IEEE half precision (to nearest even; the test
// values are normal and in range).
func toHalf(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int32(bits>>23&0xff) - 127 + 15
	mant := bits & 0x7fffff
	if f == 0 {
		return sign
	}
	if exp <= 0 {
		return sign // flush tiny values; not reached by the test inputs
	}
	half := uint32(exp)<<10 | mant>>13
	rest := mant & 0x1fff
	if rest > 0x1000 || (rest == 0x1000 && half&1 == 1) {
		half++
	}
	return sign | uint16(half)
}

func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h >> 10 & 0x1f)
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		return float32(math.Copysign(float64(mant)*math.Pow(2, -24), float64(int32(sign))))
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp-15+127)<<23 | mant<<13)
}

func filled(n int, f func(i int) float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// ids is the padded prompt "a photo of a cat" (row 0) and "a photo of a
// dog" (row 1) with the real CLIP ids the tiny vocabulary shares.
func ids(pad float32) tensor {
	rows := [][]float32{{49406, 320, 1125, 539, 320, 2368, 49407}, {49406, 320, 1125, 539, 320, 1929, 49407}}
	var data []float32
	for _, r := range rows {
		for i := range 77 {
			if i < len(r) {
				data = append(data, r[i])
			} else {
				data = append(data, pad)
			}
		}
	}
	return tensor{[]int64{2, 77}, data}
}

func rowsDiffer(t *testing.T, x []float32, rows int, what string) {
	t.Helper()
	n := len(x) / rows
	require.NotEqual(t, x[:n], x[n:2*n], what+": the two prompts give the same values")
}

func TestModelsRunAndDependOnTheirInputs(t *testing.T) {
	initORT(t)
	for _, v := range []sdxl.Variant{sdxl.FP32, sdxl.FP16} {
		t.Run(string(v), func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, sdxl.Write(dir, sdxl.Options{Variant: v}))
			r := runner{t, dir, v}

			te := r.run("text_encoder", map[string]tensor{"input_ids": ids(49407)}, map[string][]int64{
				"hidden_states.11": {2, 77, sdxl.TextHidden}, "hidden_states.12": {2, 77, sdxl.TextHidden},
				"pooler_output": {2, sdxl.TextHidden}, "last_hidden_state": {2, 77, sdxl.TextHidden},
			})
			rowsDiffer(t, te["hidden_states.11"], 2, "hidden_states.11")
			rowsDiffer(t, te["pooler_output"], 2, "pooler_output")
			require.NotEqual(t, te["hidden_states.11"], te["hidden_states.12"])
			// Causal: the tokens before the prompts differ ("cat" at
			// position 5) are the same in both rows.
			h := te["hidden_states.11"]
			require.Equal(t, h[:5*sdxl.TextHidden], h[77*sdxl.TextHidden:(77+5)*sdxl.TextHidden])

			te2 := r.run("text_encoder_2", map[string]tensor{"input_ids": ids(0)}, map[string][]int64{
				"text_embeds": {2, sdxl.Projection}, "hidden_states.31": {2, 77, sdxl.Text2Hidden},
			})
			rowsDiffer(t, te2["text_embeds"], 2, "text_embeds")
			padded := r.run("text_encoder_2", map[string]tensor{"input_ids": ids(49407)}, map[string][]int64{"text_embeds": {2, sdxl.Projection}})
			require.NotEqual(t, te2["text_embeds"], padded["text_embeds"], "the pad id must reach the pooled embedding")

			const h8 = 8
			sample := tensor{[]int64{2, 4, h8, h8}, filled(2*4*h8*h8, func(i int) float32 { return float32(math.Sin(float64(i))) })}
			timestep := tensor{[]int64{}, []float32{999}}
			if v == sdxl.FP16 {
				timestep = tensor{[]int64{1}, []float32{999}}
			}
			ehs := tensor{[]int64{2, 77, sdxl.CrossAttention}, filled(2*77*sdxl.CrossAttention, func(i int) float32 { return float32(math.Cos(float64(i) / 7)) })}
			embeds := tensor{[]int64{2, sdxl.Projection}, filled(2*sdxl.Projection, func(i int) float32 { return float32(i%9) / 9 })}
			timeIDs := tensor{[]int64{2, 6}, []float32{1024, 1024, 0, 0, 1024, 1024, 1024, 1024, 0, 0, 1024, 1024}}
			unetIn := func() map[string]tensor {
				return map[string]tensor{"sample": sample, "timestep": timestep, "encoder_hidden_states": ehs, "text_embeds": embeds, "time_ids": timeIDs}
			}
			outShape := map[string][]int64{"out_sample": {2, 4, h8, h8}}
			base := r.run("unet", unetIn(), outShape)["out_sample"]
			for name, change := range map[string]func(in map[string]tensor){
				"timestep": func(in map[string]tensor) { in["timestep"] = tensor{in["timestep"].shape, []float32{500}} },
				"encoder_hidden_states": func(in map[string]tensor) {
					in["encoder_hidden_states"] = tensor{ehs.shape, filled(len(ehs.data), func(i int) float32 { return 0 })}
				},
				"text_embeds": func(in map[string]tensor) {
					in["text_embeds"] = tensor{embeds.shape, filled(len(embeds.data), func(i int) float32 { return 0.5 })}
				},
				"time_ids": func(in map[string]tensor) {
					in["time_ids"] = tensor{timeIDs.shape, []float32{512, 512, 0, 0, 512, 512, 512, 512, 0, 0, 512, 512}}
				},
			} {
				in := unetIn()
				change(in)
				require.NotEqual(t, base, r.run("unet", in, outShape)["out_sample"], "out_sample ignores %s", name)
			}

			dec := r.run("vae_decoder", map[string]tensor{"latent_sample": {[]int64{1, 4, h8, h8}, sample.data[:4*h8*h8]}},
				map[string][]int64{"sample": {1, 3, 8 * h8, 8 * h8}})["sample"]
			lo, hi := float32(1), float32(-1)
			for _, x := range dec {
				lo, hi = min(lo, x), max(hi, x)
			}
			require.True(t, lo >= -1 && hi <= 1 && hi-lo > 0.5, "decoded pixels span [%v, %v]", lo, hi)

			latentName, ch := "latent_sample", int64(4)
			if v == sdxl.FP16 {
				latentName, ch = "latent_parameters", 8
			}
			enc := r.run("vae_encoder", map[string]tensor{"sample": {[]int64{1, 3, 8 * h8, 8 * h8}, dec}},
				map[string][]int64{latentName: {1, ch, h8, h8}})[latentName]
			require.Len(t, enc, int(ch*h8*h8))
			if v == sdxl.FP16 {
				require.InDelta(t, -6, enc[4*h8*h8], 3, "the log-variance half")
			}
		})
	}
}

func TestHeavyUNetRuns(t *testing.T) {
	initORT(t)
	dir := t.TempDir()
	require.NoError(t, sdxl.Write(dir, sdxl.Options{Variant: sdxl.FP32, HeavyMatMuls: 2}))
	info, err := os.Stat(filepath.Join(dir, "unet/model.onnx_data"))
	require.NoError(t, err)
	require.Greater(t, info.Size(), int64(4<<20), "the 1024×1024 weights live in model.onnx_data")
	r := runner{t, dir, sdxl.FP32}
	in := map[string]tensor{
		"sample":                {[]int64{1, 4, 8, 8}, filled(256, func(i int) float32 { return float32(i) / 256 })},
		"timestep":              {[]int64{}, []float32{10}},
		"encoder_hidden_states": {[]int64{1, 77, sdxl.CrossAttention}, make([]float32, 77*sdxl.CrossAttention)},
		"text_embeds":           {[]int64{1, sdxl.Projection}, make([]float32, sdxl.Projection)},
		"time_ids":              {[]int64{1, 6}, []float32{512, 512, 0, 0, 512, 512}},
	}
	out := r.run("unet", in, map[string][]int64{"out_sample": {1, 4, 8, 8}})["out_sample"]
	for _, x := range out {
		require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0))
	}
}

// BenchmarkHeavyUNet is the bare ONNX Runtime time of one call of the
// -heavy UNet (DefaultHeavyMatMuls) at SDXL-Turbo's latent size with a
// CFG batch of 2: the baseline the pipeline's overhead is measured against.
func BenchmarkHeavyUNet(b *testing.B) {
	initORT(b)
	dir := b.TempDir()
	require.NoError(b, sdxl.Write(dir, sdxl.Options{Variant: sdxl.FP32, HeavyMatMuls: sdxl.DefaultHeavyMatMuls}))
	path := filepath.Join(dir, "unet/model.onnx")
	names := []string{"sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"}
	sample, _ := ort.NewTensor(ort.NewShape(2, 4, 64, 64), make([]float32, 2*4*64*64))
	ts, _ := ort.NewScalar(float32(999))
	ehs, _ := ort.NewTensor(ort.NewShape(2, 77, sdxl.CrossAttention), make([]float32, 2*77*sdxl.CrossAttention))
	emb, _ := ort.NewTensor(ort.NewShape(2, sdxl.Projection), make([]float32, 2*sdxl.Projection))
	tid, _ := ort.NewTensor(ort.NewShape(2, 6), make([]float32, 12))
	out, _ := ort.NewTensor(ort.NewShape(2, 4, 64, 64), make([]float32, 2*4*64*64))
	sess, err := ort.NewDynamicAdvancedSession(path, names, []string{"out_sample"}, nil)
	require.NoError(b, err)
	defer sess.Destroy()
	ins := []ort.Value{sample, ts, ehs, emb, tid}
	for b.Loop() {
		if err := sess.Run(ins, []ort.Value{out}); err != nil {
			b.Fatal(err)
		}
	}
}
