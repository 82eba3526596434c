package clip_test

import "testing"

// BenchmarkEncode is tokenizing one typical prompt with the real CLIP
// vocabulary (skipped without it, like TestRealVocabularyGolden).
func BenchmarkEncode(b *testing.B) {
	tok := realTokenizerB(b)
	const prompt = "A cinematic photo of an astronaut riding a horse on the moon, highly detailed, dramatic lighting, 35mm"
	for b.Loop() {
		tok.Encode(prompt)
	}
}
