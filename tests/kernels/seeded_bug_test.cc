// Proves the OpenCL-on-pocl runs catch GPU schedule bugs rather than assuming it: the same check
// //tests/kernels:norms_test applies to every kernel is applied to a test-only OpenCL norms kernel whose
// schedule drops the tail past the last full block (generators/BUILD
// norms_f32_opencl_seeded_tail_bug). It must fail on every size that has such a tail and pass
// on sizes without one (so the failure is the seeded bug, not a broken harness).
#include <array>

#include "generators/norms_f32_opencl_seeded_tail_bug.h"
#include "gtest/gtest.h"
#include "runtime/device_buffer.h"
#include "runtime/halide_call.h"
#include "tests/norms_check.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

constexpr int64_t kBlock = 256 * 8;  // gpu_threads * gpu_items of the norms generator

// The kernel's result, or its error (with fewer than one block of elements the seeded kernel
// allocates a zero-sized partials buffer, which OpenCL rejects: also a caught bug).
absl::StatusOr<std::array<float, 2>> RunSeeded(const testing::HostTensor& x) {
  DeviceBuffer xb = testing::ToDevice(x, Device::OpenCL());
  absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(Device::OpenCL(), DType::kF32, 2);
  EXPECT_TRUE(out.ok()) << out.status();
  internal::CallContext ctx;
  EXPECT_TRUE(internal::MakeCallContext(Device::OpenCL(), {}, &ctx).ok());
  internal::BufferView xv(xb.view(), &ctx), ov(out->view(), &ctx);
  const int rc = norms_f32_opencl_seeded_tail_bug(&ctx, xv.raw(), ov.raw());
  if (rc != 0) return internal::HalideError("norms_f32_opencl_seeded_tail_bug", rc, ctx);
  std::vector<float> v = testing::ReadF32(*out);
  return std::array<float, 2>{v[0], v[1]};
}

TEST(SeededBug, PoclRunCatchesADroppedTail) {
  LARS_REQUIRE_DEVICE(DeviceType::kOpenCL);
  int caught = 0, with_tail = 0;
  for (int64_t n : testing::EdgeSizes()) {
    if (n == 0) continue;
    testing::HostTensor x = testing::RandomTensor(DType::kF32, n, 1000 + static_cast<uint32_t>(n));
    testing::SetTailSentinel(&x);
    const absl::StatusOr<std::array<float, 2>> got = RunSeeded(x);
    const ::testing::AssertionResult check =
        got.ok() ? testing::NormsMatchReference(*got, reference::Norms(x.values))
                 : ::testing::AssertionFailure() << got.status();
    if (n % kBlock == 0) {
      EXPECT_TRUE(check) << "n=" << n << " has no tail; the harness itself must pass";
    } else {
      ++with_tail;
      if (!check) ++caught;
      EXPECT_FALSE(check) << "n=" << n << ": the seeded tail bug went unnoticed";
      std::printf("n=%lld caught: %s\n", static_cast<long long>(n), check.message());
    }
  }
  std::printf("seeded tail bug caught on %d of %d sizes with a tail\n", caught, with_tail);
}

}  // namespace
}  // namespace halide_lars
