// Shared Halide helpers for the halide_lars generators (build time only; includes Halide.h):
// the generator-class aliases here, and the helpers by job -- float16.h (element types),
// contracts.h (buffer contracts, estimates), codebook.h (8-bit quantization), schedules.h
// (loop nests, reduction trees) -- each with its own .cc; lars_math.h has the step math.
#ifndef HALIDE_LARS_GENERATORS_COMMON_H_
#define HALIDE_LARS_GENERATORS_COMMON_H_

#include "Halide.h"
#include "generators/codebook.h"
#include "generators/contracts.h"
#include "generators/float16.h"
#include "generators/schedules.h"

// Brings the Generator<Self> members templated generator classes use into scope (dependent
// base: unqualified Input/Output would otherwise name Halide's unrelated Halide::Output enum).
#define LARS_GENERATOR_ALIASES(Self)                     \
  using Base = Generator<Self>;                          \
  using Base::auto_schedule;                             \
  using Base::get_target;                                \
  template <typename T2>                                 \
  using Input = typename Base::template Input<T2>;       \
  template <typename T2>                                 \
  using Output = typename Base::template Output<T2>;     \
  template <typename T2>                                 \
  using GeneratorParam = typename Base::template GeneratorParam<T2>

#endif  // HALIDE_LARS_GENERATORS_COMMON_H_
