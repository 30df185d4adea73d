// The generators' buffer contracts (what each kernel requires of its inputs and outputs, checked
// by Halide at run time) and the autoschedulers' estimates.
#ifndef HALIDE_LARS_GENERATORS_CONTRACTS_H_
#define HALIDE_LARS_GENERATORS_CONTRACTS_H_

#include <string>
#include <vector>

#include "Halide.h"

namespace halide_lars {
namespace generators {

// The contract of a kernel's same-length tensors: dense, 1-D, starting at 0, every one with
// `first`'s extent (Halide checks it at run time); estimates of 2^24 for the autoscheduler.
template <typename First, typename... Rest>
void ConstrainSameLength(First& first, Rest&... rest) {
  first.dim(0).set_min(0).set_stride(1);
  first.set_estimates({{0, 1 << 24}});
  (rest.dim(0).set_min(0).set_stride(1).set_extent(first.dim(0).extent()), ...);
  (rest.set_estimates({{0, 1 << 24}}), ...);
}

// Estimates of scalar inputs for the autoschedulers (Adams2019 needs one for every scalar):
// typical values by input name (lr 0.1, momentum 0.9, weight_decay 1e-4, max_unorm 0.02,
// trust_coefficient 1e-3, eps 1e-8; anything else 0 / false).
float TypicalScalar(const std::string& name);
template <typename T>
void EstimateScalar(Halide::GeneratorInput<T>& in) {
  in.set_estimate(static_cast<T>(TypicalScalar(in.name())));
}
template <typename... Scalars>
void EstimateScalars(Scalars&... scalars) {
  (EstimateScalar(scalars), ...);
}

// Blockwise 8-bit state: p, g and codes of one length; absmax one float per block of `block`.
template <typename P, typename G, typename C, typename A>
void ConstrainBlockState(P& p, G& g, C& codes, A& absmax, int block) {
  ConstrainSameLength(p, g, codes);
  absmax.dim(0).set_min(0).set_stride(1).set_extent((p.dim(0).extent() + block - 1) / block);
  absmax.set_estimates({{0, (1 << 24) / block}});
}

// A small input of exactly `count` elements from 0 (the gradient scale [s], a step's norms, the
// 8-bit codebook tables), with the same estimate.
template <typename Buf>
void ConstrainFixedSize(Buf& buf, int count) {
  buf.dim(0).set_bounds(0, count);
  buf.set_estimates({{0, count}});
}

// The codebook inputs of the 8-bit kernels: `code` (256 sorted codes) and, for the kernels that
// quantize, `mids` (256 midpoints) and `lut` (65536 packed entries: QuantizeIndex).
template <typename Code>
void ConstrainCodebook(Code& code) {
  ConstrainFixedSize(code, 256);
}
template <typename Code, typename Mids, typename Lut>
void ConstrainCodebook(Code& code, Mids& mids, Lut& lut) {
  ConstrainFixedSize(code, 256);
  ConstrainFixedSize(mids, 256);
  ConstrainFixedSize(lut, 65536);
}

// The output of a norms kernel: `count` dense floats from 0 ([Σp², Σu², Σg²], ...).
template <typename Out>
void ConstrainNormsOutput(Out& out, int count) {
  out.dim(0).set_bounds(0, count).set_stride(1);
  out.set_estimates({{0, count}});
}

// The IO a LARS norms kernel (lars_norms, lars8bit_norms, lars8bit_tensor_norms, lars_momentum)
// has besides its tensors: its output of `count` floats (ConstrainNormsOutput), the gradient
// scale [s] and the estimates of the step's scalars.
template <typename Out, typename GScale, typename... Scalars>
void ConstrainNormsIO(Out& out, int count, GScale& gscale, Scalars&... scalars) {
  ConstrainNormsOutput(out, count);
  ConstrainFixedSize(gscale, 1);
  EstimateScalars(scalars...);
}

// The other side, in an update kernel (lars_update, lars_apply, lars8bit_update,
// lars8bit_tensor_update): the gradient scale [s] and the norms pass's `count` floats, read;
// and the estimates of the step's scalars.
template <typename GScale, typename Norms, typename... Scalars>
void ConstrainNormsInputs(GScale& gscale, Norms& norms, int count, Scalars&... scalars) {
  ConstrainFixedSize(gscale, 1);
  ConstrainFixedSize(norms, count);
  EstimateScalars(scalars...);
}

// A Tuple output written in place over same-length inputs ({p', m'} over {p, m}): its buffers
// dense, the first from 0 with extent n (Halide checks that the others share the first's min and
// extent); estimate 2^24.
template <typename Out>
void ConstrainInPlaceTupleOutput(Out& out, const Halide::Expr& n) {
  Halide::Func out_func = out;
  std::vector<Halide::OutputImageParam> outs = out_func.output_buffers();
  outs[0].dim(0).set_min(0).set_extent(n);
  for (Halide::OutputImageParam& o : outs) o.dim(0).set_stride(1);
  out.set_estimates({{0, 1 << 24}});
}

// The absmax a blockwise update writes in place: dense from 0, as long as the `absmax` input
// (one float per block of `block` elements).
template <typename Out, typename In>
void ConstrainAbsmaxOutput(Out& absmax_out, In& absmax, int block) {
  absmax_out.dim(0).set_min(0).set_stride(1).set_extent(absmax.dim(0).extent());
  absmax_out.set_estimates({{0, (1 << 24) / block}});
}

}  // namespace generators
}  // namespace halide_lars

#endif  // HALIDE_LARS_GENERATORS_CONTRACTS_H_
