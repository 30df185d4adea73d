// XLA FFI handlers (CPU) of the stateless step (include/halide_lars/stateless.h), exported from
// libhalide_lars.so for python/halide_lars/jax.py (jax.ffi.register_ffi_target):
//
//   halide_lars_xla_step    (p, g, lr[], count[], *state)            -> (p, count, *state)
//   halide_lars_xla_begin   (p, g, lr[], count[], *state)            -> partials f32[5]
//   halide_lars_xla_finish  (p, g, lr[], count[], reduced[5], *state) -> (p, count, *state)
//
// state: the fp32 momentum, or the blockwise 8-bit codes (uint8) and absmax (float32). Options
// are one static string attribute "key=value;..." (include/halide_lars/options.inc names); lr (f32) and count
// (s32, the steps taken) are 0-d operands, so a traced schedule works. Results alias the
// operands (input_output_aliases; with donation the step is in place). count comes back +1, or
// unchanged when a non-finite gradient skipped the step (nonfinite = skip). begin/finish take a
// shard of a larger tensor (attributes shard_offset, full_numel) for jax.shard_map: the caller
// psums the partials between the two.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "halide_lars/options.h"
#include "halide_lars/stateless.h"
#include "xla/ffi/api/ffi.h"

namespace halide_lars {
namespace {

namespace ffi = xla::ffi;

// The element types the stateless step takes (it checks which goes where).
absl::StatusOr<DType> ToDType(ffi::DataType t) {
  switch (t) {
    case ffi::DataType::F32:
      return DType::kF32;
    case ffi::DataType::F16:
      return DType::kF16;
    case ffi::DataType::BF16:
      return DType::kBF16;
    case ffi::DataType::U8:
      return DType::kU8;
    default:
      return absl::InvalidArgumentError(
          "buffers: float32, float16 or bfloat16 (parameters, gradients), uint8 (8-bit codes)");
  }
}

absl::StatusOr<TensorView> View(ffi::DataType type, void* data, size_t numel) {
  absl::StatusOr<DType> dtype = ToDType(type);
  if (!dtype.ok()) return dtype.status();
  return TensorView{data, *dtype, static_cast<int64_t>(numel), Device::Cpu()};
}

// "momentum=0.9;trust_mode=exact;nesterov=true" -> LarsOptions (the step validates them).
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
  return o;
}

ffi::Error ToError(const absl::Status& s) {
  if (s.ok()) return ffi::Error::Success();
  return ffi::Error(ffi::ErrorCode::kInvalidArgument, absl::StrCat("halide_lars: ", s.message()));
}

enum class Phase { kStep, kBegin, kFinish };

// One call: the outputs (p, count, *state) as copies of the inputs unless XLA aliased them (a
// donated step is in place: nothing is copied, and the step validates everything before it
// writes, so a failed call leaves the buffers as they were), then the phase on the outputs.
// begin writes nothing but its partials.
ffi::Error Run(Phase phase, ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::Buffer<ffi::F32> lr,
               ffi::Buffer<ffi::S32> count, const float* reduced, ffi::RemainingArgs state,
               ffi::RemainingRets rets, std::string_view options, int64_t shard_offset,
               int64_t full_numel) {
  absl::StatusOr<LarsOptions> o = ParseOptions(options);
  if (!o.ok()) return ToError(o.status());
  if (lr.element_count() != 1 || count.element_count() != 1) {
    return ToError(absl::InvalidArgumentError("lr and count are scalars"));
  }
  o->lr = static_cast<double>(lr.typed_data()[0]);
  const size_t num_state = state.size();
  if (num_state != 1 && num_state != 2) {
    return ToError(absl::InvalidArgumentError("state: momentum, or codes and absmax"));
  }
  const bool writes = phase != Phase::kBegin;
  if (writes && rets.size() != 2 + num_state) {
    return ToError(absl::InvalidArgumentError("results: p, count and the state"));
  }
  void* p_data = p.untyped_data();
  void* s_data[2] = {nullptr, nullptr};
  size_t s_numel[2] = {0, 0};
  ffi::DataType s_type[2] = {};
  int32_t* count_out = nullptr;
  if (writes) {
    ffi::ErrorOr<ffi::Result<ffi::AnyBuffer>> p_out = rets.get<ffi::AnyBuffer>(0);
    ffi::ErrorOr<ffi::Result<ffi::Buffer<ffi::S32>>> c_out = rets.get<ffi::Buffer<ffi::S32>>(1);
    if (p_out.has_error()) return p_out.error();
    if (c_out.has_error()) return c_out.error();
    if ((*p_out)->size_bytes() != p.size_bytes()) {
      return ToError(absl::InvalidArgumentError("result p: the parameter's size"));
    }
    if (p_data != (*p_out)->untyped_data()) {
      std::memcpy((*p_out)->untyped_data(), p_data, p.size_bytes());
    }
    p_data = (*p_out)->untyped_data();
    count_out = (*c_out)->typed_data();
  }
  for (size_t i = 0; i < num_state; ++i) {
    ffi::ErrorOr<ffi::AnyBuffer> in = state.get<ffi::AnyBuffer>(i);
    if (in.has_error()) return in.error();
    s_data[i] = in->untyped_data();
    s_numel[i] = in->element_count();
    s_type[i] = in->element_type();
    if (!writes) continue;
    ffi::ErrorOr<ffi::Result<ffi::AnyBuffer>> out = rets.get<ffi::AnyBuffer>(2 + i);
    if (out.has_error()) return out.error();
    if ((*out)->size_bytes() != in->size_bytes()) {
      return ToError(absl::InvalidArgumentError("result state: the state's size"));
    }
    if (s_data[i] != (*out)->untyped_data()) {
      std::memcpy((*out)->untyped_data(), s_data[i], in->size_bytes());
    }
    s_data[i] = (*out)->untyped_data();
  }
  TensorStep t;
  absl::StatusOr<TensorView> v = View(p.element_type(), p_data, p.element_count());
  if (!v.ok()) return ToError(v.status());
  t.param = *v;
  v = View(g.element_type(), g.untyped_data(), g.element_count());
  if (!v.ok()) return ToError(v.status());
  t.grad = *v;
  TensorView* slots[2] = {num_state == 1 ? &t.state.momentum : &t.state.codes, &t.state.absmax};
  for (size_t i = 0; i < num_state; ++i) {
    v = View(s_type[i], s_data[i], s_numel[i]);
    if (!v.ok()) return ToError(v.status());
    *slots[i] = *v;
  }
  t.step = count.typed_data()[0];
  t.shard_offset = shard_offset;
  t.full_numel = full_numel;
  double d[5];
  if (phase == Phase::kBegin) {
    ffi::ErrorOr<ffi::Result<ffi::Buffer<ffi::F32>>> out = rets.get<ffi::Buffer<ffi::F32>>(0);
    if (out.has_error()) return out.error();
    if (rets.size() != 1 || (*out)->element_count() != 5) {
      return ToError(absl::InvalidArgumentError("result: partials f32[5]"));
    }
    if (absl::Status s = StepTensorBegin(*o, t, d); !s.ok()) return ToError(s);
    for (int i = 0; i < 5; ++i) (*out)->typed_data()[i] = static_cast<float>(d[i]);
    return ffi::Error::Success();
  }
  absl::StatusOr<bool> stepped;
  if (phase == Phase::kStep) {
    stepped = StepTensor(*o, t);
  } else {
    for (int i = 0; i < 5; ++i) d[i] = reduced[i];
    stepped = StepTensorFinish(*o, t, d);
  }
  if (!stepped.ok()) return ToError(stepped.status());
  *count_out = count.typed_data()[0] + (*stepped ? 1 : 0);
  return ffi::Error::Success();
}

ffi::Error Step(ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::Buffer<ffi::F32> lr,
                ffi::Buffer<ffi::S32> count, ffi::RemainingArgs state, ffi::RemainingRets rets,
                std::string_view options) {
  return Run(Phase::kStep, p, g, lr, count, nullptr, state, rets, options, 0, -1);
}

ffi::Error Begin(ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::Buffer<ffi::F32> lr,
                 ffi::Buffer<ffi::S32> count, ffi::RemainingArgs state, ffi::RemainingRets rets,
                 std::string_view options, int64_t shard_offset, int64_t full_numel) {
  return Run(Phase::kBegin, p, g, lr, count, nullptr, state, rets, options, shard_offset,
             full_numel);
}

ffi::Error Finish(ffi::AnyBuffer p, ffi::AnyBuffer g, ffi::Buffer<ffi::F32> lr,
                  ffi::Buffer<ffi::S32> count, ffi::Buffer<ffi::F32> reduced,
                  ffi::RemainingArgs state, ffi::RemainingRets rets, std::string_view options,
                  int64_t shard_offset, int64_t full_numel) {
  if (reduced.element_count() != 5) return ToError(absl::InvalidArgumentError("reduced: f32[5]"));
  return Run(Phase::kFinish, p, g, lr, count, reduced.typed_data(), state, rets, options,
             shard_offset, full_numel);
}

// The operands every phase starts with: p, g, lr, count.
auto Operands() {
  return ffi::Ffi::Bind()
      .Arg<ffi::AnyBuffer>()
      .Arg<ffi::AnyBuffer>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Arg<ffi::Buffer<ffi::S32>>();
}

}  // namespace
}  // namespace halide_lars

namespace ffi = xla::ffi;

XLA_FFI_DEFINE_HANDLER_SYMBOL(halide_lars_xla_step, halide_lars::Step,
                              halide_lars::Operands()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attr<std::string_view>("options"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(halide_lars_xla_begin, halide_lars::Begin,
                              halide_lars::Operands()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attr<std::string_view>("options")
                                  .Attr<int64_t>("shard_offset")
                                  .Attr<int64_t>("full_numel"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(halide_lars_xla_finish, halide_lars::Finish,
                              halide_lars::Operands()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // reduced partials
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attr<std::string_view>("options")
                                  .Attr<int64_t>("shard_offset")
                                  .Attr<int64_t>("full_numel"));
