// XLA FFI handlers (CPU) of the stateless step (lars/stateless.h), exported from
// libhalide_lars.so for python/halide_lars/jax.py (jax.ffi.register_ffi_target):
//
//   halide_lars_xla_step_fp32   (p, g, m, lr[], count[])              -> (p, m, count)
//   halide_lars_xla_step_8bit   (p, g, codes, absmax, lr[], count[])  -> (p, codes, absmax, count)
//   halide_lars_xla_begin_fp32 / _8bit  (the same inputs)             -> partials f32[5]
//   halide_lars_xla_finish_fp32 / _8bit (the same inputs, reduced f32[5]) -> as the step
//
// Options are one static string attribute "key=value;..." (lars/options.inc names), validated
// here; lr (f32) and count (s32, the steps taken) are 0-d arrays, so a traced schedule works.
// Outputs alias the inputs (input_output_aliases; with donation XLA reuses the buffers and the
// step is in place); without aliasing the inputs are copied to the outputs first. count comes
// back +1, or unchanged when a non-finite gradient skipped the step (nonfinite = skip). The
// begin/finish pair takes a shard of a larger tensor (attributes shard_offset, full_numel) for
// jax.shard_map: the caller psums the partials between the two.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lars/options.h"
#include "lars/stateless.h"
#include "xla/ffi/api/ffi.h"

namespace halide_lars {
namespace {

namespace ffi = xla::ffi;

absl::StatusOr<DType> ParamDType(ffi::DataType t) {
  switch (t) {
    case ffi::DataType::F32:
      return DType::kF32;
    case ffi::DataType::F16:
      return DType::kF16;
    case ffi::DataType::BF16:
      return DType::kBF16;
    default:
      return absl::InvalidArgumentError("parameters and gradients: float32, float16 or bfloat16");
  }
}

TensorView View(void* data, DType dtype, int64_t numel) {
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.numel = numel;
  v.device = Device::Cpu();
  return v;
}

// "momentum=0.9;trust_mode=exact;nesterov=true" -> LarsOptions (validated).
absl::StatusOr<LarsOptions> ParseOptions(std::string_view text) {
  LarsOptions o;
  const absl::string_view all(text.data(), text.size());
  for (absl::string_view item : absl::StrSplit(all, ';', absl::SkipEmpty())) {
    const std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, '=');
    double number;
    absl::Status s;
    if (kv.second == "true" || kv.second == "false") {
      s = SetOption(&o, kv.first, OptionValue(kv.second == "true"));
    } else if (absl::SimpleAtod(kv.second, &number)) {
      s = SetOption(&o, kv.first, OptionValue(number));
    } else {
      s = SetOption(&o, kv.first, OptionValue(std::string(kv.second)));
    }
    if (!s.ok()) return s;
  }
  o.lr = 0.0;  // set per call from the lr operand
  if (absl::Status s = ValidateOptions(o); !s.ok()) return s;
  return o;
}

ffi::Error ToError(const absl::Status& s) {
  if (s.ok()) return ffi::Error::Success();
  return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                    absl::StrCat("halide_lars: ", s.message()));
}

// Copies an input into its output unless XLA aliased them.
void Alias(const void* in, void* out, size_t bytes) {
  if (in != out && bytes > 0) std::memcpy(out, in, bytes);
}

enum class Phase { kStep, kBegin, kFinish };

struct Call {
  ffi::AnyBuffer p, g;
  const ffi::AnyBuffer* state[2];  // m, or codes and absmax
  int num_state;
  ffi::Buffer<ffi::F32> lr;
  ffi::Buffer<ffi::S32> count;
};

// The step (or a phase of it) on the output buffers. out_state: where the state lives after the
// inputs were copied (the outputs; for begin, the inputs: nothing is written).
ffi::Error Run(Phase phase, const Call& c, void* p_out, void* const out_state[2],
               int32_t* count_out, float* partials, const float* reduced,
               std::string_view options, int64_t shard_offset, int64_t full_numel) {
  absl::StatusOr<LarsOptions> o = ParseOptions(options);
  if (!o.ok()) return ToError(o.status());
  absl::StatusOr<DType> dtype = ParamDType(c.p.element_type());
  if (!dtype.ok()) return ToError(dtype.status());
  if (c.g.element_type() != c.p.element_type() ||
      c.g.element_count() != c.p.element_count()) {
    return ToError(absl::InvalidArgumentError("the gradient's dtype and size are the parameter's"));
  }
  if (c.lr.element_count() != 1 || c.count.element_count() != 1) {
    return ToError(absl::InvalidArgumentError("lr and count are scalars"));
  }
  o->lr = static_cast<double>(c.lr.typed_data()[0]);
  if (absl::Status s = ValidateOptions(*o); !s.ok()) return ToError(s);
  const int64_t n = static_cast<int64_t>(c.p.element_count());
  TensorStep t;
  t.param = View(p_out, *dtype, n);
  t.grad = View(c.g.untyped_data(), *dtype, n);
  if (c.num_state == 1) {
    if (c.state[0]->element_type() != ffi::DataType::F32) {
      return ToError(absl::InvalidArgumentError("momentum: float32"));
    }
    t.state.momentum = View(out_state[0], DType::kF32, c.state[0]->element_count());
  } else {
    if (c.state[0]->element_type() != ffi::DataType::U8 ||
        c.state[1]->element_type() != ffi::DataType::F32) {
      return ToError(absl::InvalidArgumentError("codes: uint8, absmax: float32"));
    }
    t.state.codes = View(out_state[0], DType::kU8, c.state[0]->element_count());
    t.state.absmax = View(out_state[1], DType::kF32, c.state[1]->element_count());
  }
  t.step = c.count.typed_data()[0];
  t.shard_offset = shard_offset;
  t.full_numel = full_numel;
  if (phase == Phase::kBegin) {
    double d[5];
    if (absl::Status s = StepTensorBegin(*o, t, d); !s.ok()) return ToError(s);
    for (int i = 0; i < 5; ++i) partials[i] = static_cast<float>(d[i]);
    return ffi::Error::Success();
  }
  absl::StatusOr<bool> stepped;
  if (phase == Phase::kStep) {
    stepped = StepTensor(*o, t);
  } else {
    double d[5];
    for (int i = 0; i < 5; ++i) d[i] = reduced[i];
    stepped = StepTensorFinish(*o, t, d);
  }
  if (!stepped.ok()) return ToError(stepped.status());
  *count_out = c.count.typed_data()[0] + (*stepped ? 1 : 0);
  return ffi::Error::Success();
}

// The outputs as copies of the inputs (no-ops when aliased), then the phase.
ffi::Error Step(Phase phase, const Call& c, ffi::Result<ffi::AnyBuffer> p_out,
                ffi::Result<ffi::AnyBuffer>* s_out, ffi::Result<ffi::Buffer<ffi::S32>>* count_out,
                const float* reduced, std::string_view options, int64_t shard_offset,
                int64_t full_numel) {
  if (p_out->element_count() != c.p.element_count()) {
    return ToError(absl::InvalidArgumentError("output size"));
  }
  void* states[2] = {nullptr, nullptr};
  for (int i = 0; i < c.num_state; ++i) {
    if (s_out[i]->size_bytes() != c.state[i]->size_bytes()) {
      return ToError(absl::InvalidArgumentError("state output size"));
    }
    states[i] = s_out[i]->untyped_data();
  }
  // Aliased (donated) buffers are not copied: the step validates everything before it writes,
  // so a failed call leaves them as they were.
  Alias(c.p.untyped_data(), p_out->untyped_data(), c.p.size_bytes());
  for (int i = 0; i < c.num_state; ++i) {
    Alias(c.state[i]->untyped_data(), states[i], c.state[i]->size_bytes());
  }
  return Run(phase, c, p_out->untyped_data(), states, (*count_out)->typed_data(), nullptr, reduced,
             options, shard_offset, full_numel);
}

ffi::Error StepFp32(ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::AnyBuffer m, ffi::Buffer<ffi::F32> lr,
                    ffi::Buffer<ffi::S32> count, ffi::Result<ffi::AnyBuffer> p_out,
                    ffi::Result<ffi::AnyBuffer> m_out, ffi::Result<ffi::Buffer<ffi::S32>> count_out,
                    std::string_view options) {
  Call c{p, g, {&m, nullptr}, 1, lr, count};
  return Step(Phase::kStep, c, p_out, &m_out, &count_out, nullptr, options, 0, -1);
}

ffi::Error Step8bit(ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::AnyBuffer codes, ffi::AnyBuffer absmax,
                    ffi::Buffer<ffi::F32> lr, ffi::Buffer<ffi::S32> count,
                    ffi::Result<ffi::AnyBuffer> p_out, ffi::Result<ffi::AnyBuffer> codes_out,
                    ffi::Result<ffi::AnyBuffer> absmax_out,
                    ffi::Result<ffi::Buffer<ffi::S32>> count_out, std::string_view options) {
  Call c{p, g, {&codes, &absmax}, 2, lr, count};
  ffi::Result<ffi::AnyBuffer> outs[2] = {codes_out, absmax_out};
  return Step(Phase::kStep, c, p_out, outs, &count_out, nullptr, options, 0, -1);
}

ffi::Error BeginFp32(ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::AnyBuffer m, ffi::Buffer<ffi::F32> lr,
                     ffi::Buffer<ffi::S32> count, ffi::Result<ffi::Buffer<ffi::F32>> partials,
                     std::string_view options, int64_t shard_offset, int64_t full_numel) {
  Call c{p, g, {&m, nullptr}, 1, lr, count};
  void* states[2] = {m.untyped_data(), nullptr};
  return Run(Phase::kBegin, c, p.untyped_data(), states, nullptr, partials->typed_data(), nullptr,
             options, shard_offset, full_numel);
}

ffi::Error Begin8bit(ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::AnyBuffer codes,
                     ffi::AnyBuffer absmax, ffi::Buffer<ffi::F32> lr, ffi::Buffer<ffi::S32> count,
                     ffi::Result<ffi::Buffer<ffi::F32>> partials, std::string_view options,
                     int64_t shard_offset, int64_t full_numel) {
  Call c{p, g, {&codes, &absmax}, 2, lr, count};
  void* states[2] = {codes.untyped_data(), absmax.untyped_data()};
  return Run(Phase::kBegin, c, p.untyped_data(), states, nullptr, partials->typed_data(), nullptr,
             options, shard_offset, full_numel);
}

ffi::Error FinishFp32(ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::AnyBuffer m,
                      ffi::Buffer<ffi::F32> lr, ffi::Buffer<ffi::S32> count,
                      ffi::Buffer<ffi::F32> reduced, ffi::Result<ffi::AnyBuffer> p_out,
                      ffi::Result<ffi::AnyBuffer> m_out,
                      ffi::Result<ffi::Buffer<ffi::S32>> count_out, std::string_view options,
                      int64_t shard_offset, int64_t full_numel) {
  if (reduced.element_count() != 5) return ToError(absl::InvalidArgumentError("reduced: f32[5]"));
  Call c{p, g, {&m, nullptr}, 1, lr, count};
  return Step(Phase::kFinish, c, p_out, &m_out, &count_out, reduced.typed_data(), options,
              shard_offset, full_numel);
}

ffi::Error Finish8bit(ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::AnyBuffer codes,
                      ffi::AnyBuffer absmax, ffi::Buffer<ffi::F32> lr, ffi::Buffer<ffi::S32> count,
                      ffi::Buffer<ffi::F32> reduced, ffi::Result<ffi::AnyBuffer> p_out,
                      ffi::Result<ffi::AnyBuffer> codes_out, ffi::Result<ffi::AnyBuffer> absmax_out,
                      ffi::Result<ffi::Buffer<ffi::S32>> count_out, std::string_view options,
                      int64_t shard_offset, int64_t full_numel) {
  if (reduced.element_count() != 5) return ToError(absl::InvalidArgumentError("reduced: f32[5]"));
  Call c{p, g, {&codes, &absmax}, 2, lr, count};
  ffi::Result<ffi::AnyBuffer> outs[2] = {codes_out, absmax_out};
  return Step(Phase::kFinish, c, p_out, outs, &count_out, reduced.typed_data(), options,
              shard_offset, full_numel);
}

}  // namespace
}  // namespace halide_lars

namespace ffi = xla::ffi;
using halide_lars::Begin8bit;
using halide_lars::BeginFp32;
using halide_lars::Finish8bit;
using halide_lars::FinishFp32;
using halide_lars::Step8bit;
using halide_lars::StepFp32;

XLA_FFI_DEFINE_HANDLER_SYMBOL(halide_lars_xla_step_fp32, StepFp32,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<std::string_view>("options"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(halide_lars_xla_step_8bit, Step8bit,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<std::string_view>("options"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(halide_lars_xla_begin_fp32, BeginFp32,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<std::string_view>("options")
                                  .Attr<int64_t>("shard_offset")
                                  .Attr<int64_t>("full_numel"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(halide_lars_xla_begin_8bit, Begin8bit,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<std::string_view>("options")
                                  .Attr<int64_t>("shard_offset")
                                  .Attr<int64_t>("full_numel"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(halide_lars_xla_finish_fp32, FinishFp32,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<std::string_view>("options")
                                  .Attr<int64_t>("shard_offset")
                                  .Attr<int64_t>("full_numel"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(halide_lars_xla_finish_8bit, Finish8bit,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<std::string_view>("options")
                                  .Attr<int64_t>("shard_offset")
                                  .Attr<int64_t>("full_numel"));
