package sdxl

import (
	"fmt"
	"math"
	"math/rand/v2"

	ob "github.com/millrace/millrace/accel/onnxbuild"
)

// vocabRows is the text encoders' embedding table size: ids are taken
// modulo it (a real table has 49408 rows; 1024 keeps the files small
// while every token of the tiny vocabulary still gets its own row, the
// specials included).
const vocabRows = 1024

// heavySize is the side of the -heavy UNet's square matrices.
const heavySize = 1024

// builder accumulates a graph with generated names and fixed
// pseudo-random weights.
type builder struct {
	g        ob.Graph
	rng      *rand.Rand
	external bool // initializers go to the external data file
	n        int
}

func newBuilder(name string, seed uint64, external bool) *builder {
	return &builder{g: ob.Graph{Name: name}, rng: rand.New(rand.NewPCG(seed, 0x5d41)), external: external}
}

func (b *builder) input(name string, t ob.ElemType, shape ...ob.Dim) string {
	b.g.Inputs = append(b.g.Inputs, ob.Value{Name: name, Type: t, Shape: shape})
	return name
}

func (b *builder) output(name string, t ob.ElemType, shape ...ob.Dim) {
	b.g.Outputs = append(b.g.Outputs, ob.Value{Name: name, Type: t, Shape: shape})
}

// weight is an FP32 initializer uniform in [-scale, scale].
func (b *builder) weight(dims []int64, scale float32) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = (2*b.rng.Float32() - 1) * scale
	}
	return b.constant(ob.Floats("", dims, v))
}

// fill is an FP32 initializer holding one value.
func (b *builder) fill(dims []int64, value float32) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = value
	}
	return b.constant(ob.Floats("", dims, v))
}

// scalar is a rank-0 FP32 constant.
func (b *builder) scalar(v float32) string { return b.constant(ob.Floats("", nil, []float32{v})) }

func (b *builder) ints(dims []int64, v ...int64) string { return b.constant(ob.Int64s("", dims, v...)) }

func (b *builder) constant(t ob.Tensor) string {
	b.n++
	t.Name = fmt.Sprintf("w%d", b.n)
	// Like onnx's external data writer (size_threshold 1024), small
	// tensors stay inline: ONNX Runtime's shape inference must read
	// constant inputs such as Unsqueeze's axes from the model itself.
	t.External = b.external && len(t.Raw) >= 1024
	b.g.Initializers = append(b.g.Initializers, t)
	return t.Name
}

// op adds a node and returns its output's (generated) name.
func (b *builder) op(op string, inputs []string, attrs ...ob.Attr) string {
	b.n++
	return b.opTo(fmt.Sprintf("t%d", b.n), op, inputs, attrs...)
}

// opTo adds a node whose output is named out.
func (b *builder) opTo(out, op string, inputs []string, attrs ...ob.Attr) string {
	b.g.Nodes = append(b.g.Nodes, ob.Node{Op: op, Inputs: inputs, Outputs: []string{out}, Attrs: attrs})
	return out
}

func (b *builder) toFloat(x string) string {
	return b.op("Cast", []string{x}, ob.AttrInt("to", int64(ob.Float)))
}

// emit makes x the graph output name, cast to t when t is FP16.
func (b *builder) emit(name, x string, t ob.ElemType) {
	if t == ob.Float16 {
		b.opTo(name, "Cast", []string{x}, ob.AttrInt("to", int64(ob.Float16)))
		return
	}
	b.opTo(name, "Identity", []string{x})
}

func (v Variant) floatType() ob.ElemType {
	if v == FP16 {
		return ob.Float16
	}
	return ob.Float
}

func (v Variant) idType() ob.ElemType {
	if v == FP16 {
		return ob.Int64
	}
	return ob.Int32
}

// textEncoderGraph is a CLIP text encoder in miniature: an embedding
// lookup, then layers each mixing a token with the ones before it
// (CumSum: causal, like CLIP's attention mask), a final LayerNorm, and
// mean pooling. hidden_states.0 is the embeddings, hidden_states.k the
// k-th layer's output, as Optimum exports them.
func textEncoderGraph(v Variant, name string, seed uint64, hidden, layers int64, withProjection, external bool) *builder {
	b := newBuilder(name, seed, external)
	batch, seq := ob.P("batch_size"), ob.P("sequence_length")
	ft := v.floatType()
	ids := b.input("input_ids", v.idType(), batch, seq)

	idx := b.op("Mod", []string{b.op("Cast", []string{ids}, ob.AttrInt("to", int64(ob.Int64))), b.ints(nil, vocabRows)})
	h := b.op("Gather", []string{b.weight([]int64{vocabRows, hidden}, 1), idx})
	w := b.weight([]int64{hidden, hidden}, 1.5/float32(sqrt(hidden)))
	bias := b.weight([]int64{hidden}, 0.1)
	axis := b.ints(nil, 1)
	causal := b.scalar(0.02)
	states := []string{h}
	for range layers {
		mixed := b.op("Add", []string{b.op("MatMul", []string{h, w}), b.op("Mul", []string{b.op("CumSum", []string{h, axis}), causal})})
		h = b.op("Tanh", []string{b.op("Add", []string{mixed, bias})})
		states = append(states, h)
	}
	last := b.op("LayerNormalization", []string{h, b.fill([]int64{hidden}, 1), b.fill([]int64{hidden}, 0)},
		ob.AttrInt("axis", -1), ob.AttrFloat("epsilon", 1e-5))
	pooled := b.op("ReduceMean", []string{last}, ob.AttrInts("axes", 1), ob.AttrInt("keepdims", 0))

	if withProjection {
		embeds := b.op("MatMul", []string{pooled, b.weight([]int64{hidden, Projection}, 1/float32(sqrt(hidden)))})
		b.emit("text_embeds", embeds, ft)
		b.output("text_embeds", ft, batch, ob.D(Projection))
	}
	b.emit("last_hidden_state", last, ft)
	b.output("last_hidden_state", ft, batch, seq, ob.D(hidden))
	if !withProjection {
		b.emit("pooler_output", pooled, ft)
		b.output("pooler_output", ft, batch, ob.D(hidden))
	}
	for k, s := range states {
		out := fmt.Sprintf("hidden_states.%d", k)
		b.emit(out, s, ft)
		b.output(out, ft, batch, seq, ob.D(hidden))
	}
	return b
}

// textEncoder is text_encoder (CLIP ViT-L's text tower in miniature):
// input_ids → last_hidden_state, pooler_output, hidden_states.0…12.
func textEncoder(v Variant) []byte {
	return ob.Encode(textEncoderGraph(v, "text_encoder", 1, TextHidden, TextLayers, false, false).g)
}

// textEncoderExternal is text_encoder_2 (OpenCLIP bigG's in miniature),
// with its weights in model.onnx_data as Optimum writes it: input_ids →
// text_embeds, last_hidden_state, hidden_states.0…32.
func textEncoderExternal(v Variant) (model, data []byte) {
	return ob.EncodeExternal(textEncoderGraph(v, "text_encoder_2", 2, Text2Hidden, Text2Layers, true, true).g, "model.onnx_data")
}

// unet is the UNet in miniature, with every weight in model.onnx_data:
//
//	out_sample = Conv1x1(sample) + tanh(W·[mean_seq(encoder_hidden_states), text_embeds, time_ids/1024])
//	             + sample·timestep/2000 (+ 0.001·heavy)
//
// so the output depends on each input, and on which one is which.
func unet(opts Options) (model, data []byte) {
	v := opts.Variant
	b := newBuilder("unet", 3, true)
	ft := v.floatType()
	batch := ob.P("batch_size")
	sample := b.toFloat(b.input("sample", ft, batch, ob.D(LatentChannels), ob.P("height"), ob.P("width")))
	var timestep string
	if v == FP16 {
		timestep = b.toFloat(b.input("timestep", ob.Int64, ob.P("steps")))
	} else {
		timestep = b.toFloat(b.input("timestep", ob.Float))
	}
	ehs := b.toFloat(b.input("encoder_hidden_states", ft, batch, ob.P("sequence_length"), ob.D(CrossAttention)))
	embeds := b.toFloat(b.input("text_embeds", ft, batch, ob.D(Projection)))
	timeIDs := b.toFloat(b.input("time_ids", ft, batch, ob.D(6)))

	context := b.op("ReduceMean", []string{ehs}, ob.AttrInts("axes", 1), ob.AttrInt("keepdims", 0))
	cond := b.op("Concat", []string{context, embeds, b.op("Mul", []string{timeIDs, b.scalar(1.0 / 1024)})}, ob.AttrInt("axis", 1))
	condDim := int64(CrossAttention + Projection + 6)
	proj := b.op("Tanh", []string{b.op("Add", []string{
		b.op("MatMul", []string{cond, b.weight([]int64{condDim, LatentChannels}, 2/float32(sqrt(condDim)))}),
		b.weight([]int64{LatentChannels}, 0.1),
	})})
	proj = b.op("Unsqueeze", []string{proj, b.ints([]int64{2}, 2, 3)})
	mix := b.op("Conv", []string{sample, b.weight([]int64{LatentChannels, LatentChannels, 1, 1}, 0.6)})
	timed := b.op("Mul", []string{sample, b.op("Mul", []string{timestep, b.scalar(1.0 / 2000)})})
	out := b.op("Add", []string{b.op("Add", []string{mix, proj}), timed})
	if opts.HeavyMatMuls > 0 {
		// A chain of matrix products seeded from the sample, so ONNX
		// Runtime cannot fold it into a constant at load time.
		big := b.weight([]int64{heavySize, heavySize}, 1.7/float32(sqrt(heavySize)))
		m := b.op("Mul", []string{big, b.op("ReduceMean", []string{sample}, ob.AttrInt("keepdims", 0))})
		for range opts.HeavyMatMuls {
			m = b.op("MatMul", []string{m, big})
		}
		heavy := b.op("ReduceMean", []string{m}, ob.AttrInt("keepdims", 0))
		out = b.op("Add", []string{out, b.op("Mul", []string{heavy, b.scalar(1e-3)})})
	}
	b.emit("out_sample", out, ft)
	b.output("out_sample", ft, batch, ob.D(LatentChannels), ob.P("height"), ob.P("width"))
	return ob.EncodeExternal(b.g, "model.onnx_data")
}

// vaeDecoder maps latents to an image 8× larger: a 1×1 convolution to
// 3·8·8 channels, DepthToSpace, tanh into [-1, 1]. FP32 in both variants.
func vaeDecoder() []byte {
	b := newBuilder("vae_decoder", 4, false)
	batch := ob.P("batch_size")
	latent := b.input("latent_sample", ob.Float, batch, ob.D(LatentChannels), ob.P("height_latent"), ob.P("width_latent"))
	const ch = 3 * VAEScale * VAEScale
	y := b.op("Conv", []string{latent, b.weight([]int64{ch, LatentChannels, 1, 1}, 0.5), b.weight([]int64{ch}, 0.2)})
	y = b.op("DepthToSpace", []string{y}, ob.AttrInt("blocksize", VAEScale))
	b.opTo("sample", "Tanh", []string{y})
	b.output("sample", ob.Float, batch, ob.D(3), ob.P("height"), ob.P("width"))
	return ob.Encode(b.g)
}

// vaeEncoder maps an image to latents 8× smaller: SpaceToDepth and a 1×1
// convolution, to latent_sample (FP32 variant) or latent_parameters
// (FP16 variant: the mean's 4 channels, then 4 of log-variance around
// -6, so sampling stays close to the mean).
func vaeEncoder(v Variant) []byte {
	b := newBuilder("vae_encoder", 5, false)
	batch := ob.P("batch_size")
	img := b.input("sample", ob.Float, batch, ob.D(3), ob.P("height"), ob.P("width"))
	const ch = 3 * VAEScale * VAEScale
	x := b.op("SpaceToDepth", []string{img}, ob.AttrInt("blocksize", VAEScale))
	name, outCh := "latent_sample", int64(LatentChannels)
	bias := b.weight([]int64{LatentChannels}, 0.1)
	if v == FP16 {
		name, outCh = "latent_parameters", 2*LatentChannels
		logvar := make([]float32, LatentChannels)
		for i := range logvar {
			logvar[i] = -6
		}
		bias = b.op("Concat", []string{bias, b.constant(ob.Floats("", []int64{LatentChannels}, logvar))}, ob.AttrInt("axis", 0))
	}
	b.opTo(name, "Conv", []string{x, b.weight([]int64{outCh, ch, 1, 1}, 2/float32(sqrt(ch))), bias})
	b.output(name, ob.Float, batch, ob.D(outCh), ob.P("height_latent"), ob.P("width_latent"))
	return ob.Encode(b.g)
}

func sqrt(n int64) float64 { return math.Sqrt(float64(n)) }
