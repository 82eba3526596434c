package sessions

import (
	"errors"
	"fmt"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"
)

// Provider names an ONNX Runtime execution provider.
type Provider string

// The execution providers a Config may ask for.
const (
	// CPU is ONNX Runtime's default provider; it needs nothing else.
	CPU Provider = "cpu"
	// CUDA runs on an NVIDIA GPU. It needs a GPU build of ONNX Runtime
	// (libonnxruntime_providers_cuda.so and _shared.so beside the library)
	// and the CUDA and cuDNN libraries that build was made for. The
	// onnxruntime-node library `make accel-deps` fetches has no CUDA
	// provider, so asking for it there fails when sessions are created.
	CUDA Provider = "cuda"
	// TensorRT runs on an NVIDIA GPU through TensorRT, with CUDA appended
	// after it for the operators TensorRT does not take (ONNX Runtime's
	// recommended order). It needs what CUDA needs plus TensorRT's
	// libraries and libonnxruntime_providers_tensorrt.so.
	TensorRT Provider = "tensorrt"
)

// ErrProvider wraps every failure to set up the configured execution
// provider.
var ErrProvider = errors.New("execution provider unavailable")

func (p Provider) valid() bool { return p == CPU || p == CUDA || p == TensorRT }

// sessionOptions builds the options every session of cfg is created with.
// The caller destroys them.
func sessionOptions(cfg *Config) (*ort.SessionOptions, error) {
	o, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	if err := configureOptions(o, cfg); err != nil {
		o.Destroy()
		return nil, err
	}
	return o, nil
}

func configureOptions(o *ort.SessionOptions, cfg *Config) error {
	if cfg.IntraOpThreads > 0 {
		if err := o.SetIntraOpNumThreads(cfg.IntraOpThreads); err != nil {
			return err
		}
	}
	if cfg.InterOpThreads > 0 {
		if err := o.SetInterOpNumThreads(cfg.InterOpThreads); err != nil {
			return err
		}
	}
	gpuOptions := map[string]string{"device_id": strconv.Itoa(cfg.DeviceID)}
	for k, v := range cfg.ProviderOptions {
		gpuOptions[k] = v
	}
	switch cfg.Provider {
	case CPU, "":
		return nil
	case TensorRT:
		trt, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return providerError(cfg, err)
		}
		defer trt.Destroy()
		if err := trt.Update(gpuOptions); err != nil {
			return providerError(cfg, err)
		}
		if err := o.AppendExecutionProviderTensorRT(trt); err != nil {
			return providerError(cfg, err)
		}
		// CUDA takes what TensorRT leaves; only device_id is shared.
		gpuOptions = map[string]string{"device_id": strconv.Itoa(cfg.DeviceID)}
		fallthrough
	case CUDA:
		cuda, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return providerError(cfg, err)
		}
		defer cuda.Destroy()
		if err := cuda.Update(gpuOptions); err != nil {
			return providerError(cfg, err)
		}
		if err := o.AppendExecutionProviderCUDA(cuda); err != nil {
			return providerError(cfg, err)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown execution provider %q (want cpu, cuda or tensorrt)", ErrProvider, cfg.Provider)
}

func providerError(cfg *Config, err error) error {
	return fmt.Errorf("%w: ONNX Runtime could not set up the %s execution provider: %v. "+
		"The library from onnxruntime-node (`make accel-deps`) is CPU-only; for %s point -ort-lib at a GPU build of ONNX Runtime %s or newer "+
		"whose provider libraries (libonnxruntime_providers_*.so) sit beside it and whose CUDA/cuDNN (and TensorRT) libraries are on the loader path, or use -provider cpu",
		ErrProvider, cfg.Provider, err, cfg.Provider, ORTVersion)
}
