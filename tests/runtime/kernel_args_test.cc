// The kernel list and the kernels' arguments are each written once, and agree with what was
// generated: every registered kernel (generators/kernels.inc, generated from
// generators/kernels.bzl) has, in order, the arguments runtime/kernel_ops.inc lists for its op --
// the generator's names (its <fn>_metadata()), buffers where buffers are, scalars where scalars
// are. The call sites fill <Op>Args by field name, so a value reaches the argument of that name.
#include <set>
#include <string>
#include <vector>

#include "HalideRuntime.h"
#include "gtest/gtest.h"
#include "runtime/registry.h"

namespace halide_lars {
namespace {

// Halide names an Output's Func "out$2" or "out$1.0" (a uniquifying "$<n>"; ".<i>": a tuple
// element): the generator's name is the rest.
std::string GeneratorName(const char* metadata_name) {
  std::string out;
  for (const char* c = metadata_name; *c != '\0'; ++c) {
    if (*c == '$') {
      while (c[1] >= '0' && c[1] <= '9') ++c;
      continue;
    }
    out += *c;
  }
  return out;
}

std::vector<const halide_filter_argument_t*> GeneratedArgs(const KernelInfo& k) {
  const halide_filter_metadata_t* md = k.metadata();
  std::vector<const halide_filter_argument_t*> out;
  for (int i = 0; i < md->num_arguments; ++i) {
    if (std::string(md->arguments[i].name) != "__user_context") out.push_back(&md->arguments[i]);
  }
  return out;
}

TEST(KernelArgs, EveryKernelTakesItsOpsArgumentsInOrder) {
  ASSERT_FALSE(AllKernels().empty());
  for (const KernelInfo& k : AllKernels()) {
    SCOPED_TRACE(k.name);
    const absl::Span<const KernelArgName> want = OpArgNames(k.op);
    const std::vector<const halide_filter_argument_t*> got = GeneratedArgs(k);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(GeneratorName(got[i]->name), want[i].name) << "argument " << i;
      const bool buffer = got[i]->kind != halide_argument_kind_input_scalar;
      EXPECT_EQ(buffer, want[i].buffer) << got[i]->name;
    }
  }
}

// Every op has kernels (an op without a row would never be dispatched or tested), and the names
// the registry gives them are the generated symbols' (kernel_ops.inc token + dtype + backend).
TEST(KernelArgs, EveryOpHasKernelsNamedAfterIt) {
  std::set<Op> seen;
  for (const KernelInfo& k : AllKernels()) {
    seen.insert(k.op);
    const std::string prefix =
        std::string(OpName(k.op)) + "_" + std::string(DTypeName(k.dtype)) + "_" +
        std::string(DeviceTypeName(k.device));
    EXPECT_EQ(std::string(k.name).rfind(prefix, 0), 0u) << k.name;
    EXPECT_STREQ(k.metadata()->name, k.name);
  }
  int ops = 0;
#define LARS_OP(Name, token, ARGS) \
  ++ops;                           \
  EXPECT_TRUE(seen.count(Op::k##Name)) << #token " has no kernel";
#include "runtime/kernel_ops.inc"
#undef LARS_OP
  EXPECT_EQ(static_cast<int>(seen.size()), ops);
}

}  // namespace
}  // namespace halide_lars
