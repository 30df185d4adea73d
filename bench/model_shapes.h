// Parameter tensor sizes of published models, for benchmarks: the multi-tensor cases step the
// same tensor sets everywhere (lars_bench on the CPU, gpu_bench on any device, peers.py).
#ifndef HALIDE_LARS_BENCH_MODEL_SHAPES_H_
#define HALIDE_LARS_BENCH_MODEL_SHAPES_H_

#include <cstdint>
#include <vector>

namespace halide_lars {

// ResNet-50's 161 parameter tensors (25.6M params) from its published layer shapes.
std::vector<int64_t> ResNet50Sizes();

// BERT-base's 199 parameter tensors (110M params) from its published shapes (embeddings,
// 12 encoder layers of 16 tensors, pooler).
std::vector<int64_t> BertBaseSizes();

}  // namespace halide_lars

#endif  // HALIDE_LARS_BENCH_MODEL_SHAPES_H_
