// runtime/: device probes, device buffers, the registry, and bad input to the kernel calls
// (clear absl::Status, nothing written, no crash).
#include <dlfcn.h>

#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/device_buffer.h"
#include "runtime/devices.h"
#include "runtime/halide_call.h"
#include "runtime/norms.h"
#include "runtime/registry.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {


TEST(Devices, ProbesNeverCrashAndCpuIsAlwaysThere) {
  const std::vector<Device> devices = AvailableDevices();
  ASSERT_FALSE(devices.empty());
  EXPECT_EQ(devices[0], Device::Cpu());
  const std::string described = DescribeBackends();
  EXPECT_NE(described.find("cpu: available"), std::string::npos) << described;
  EXPECT_NE(described.find("cuda: "), std::string::npos) << described;
  EXPECT_NE(described.find("opencl: "), std::string::npos) << described;
  std::printf("%s", described.c_str());
  // Both probes return the same answer every time.
  EXPECT_EQ(CudaAvailable(), CudaAvailable());
  EXPECT_EQ(OpenCLStatus(), OpenCLStatus());
}

TEST(Devices, CudaDeviceWithoutGpuIsAClearError) {
  if (CudaAvailable()) GTEST_SKIP() << "a CUDA device is present";
  float host[4] = {1, 2, 3, 4};
  float out[2] = {-1, -1};
  // A "device pointer" on a machine without CUDA: refused before anything touches it.
  TensorView x{host, DType::kF32, 4, Device::Cuda(0)};
  TensorView o{out, DType::kF32, 2, Device::Cuda(0)};
  const absl::Status s = SumSqMaxAbs(x, o);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("cuda:0"), absl::string_view::npos) << s;
  EXPECT_EQ(out[0], -1.0f);
  EXPECT_FALSE(DeviceBuffer::Allocate(Device::Cuda(0), DType::kF32, 16).ok());
}

TEST(Devices, BadCudaOrdinalIsAClearError) {
  if (!CudaAvailable()) GTEST_SKIP() << "no CUDA device: " << CudaStatus().message();
  const absl::Status s = DeviceStatus(Device::Cuda(1000));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

class DeviceBufferTest : public ::testing::TestWithParam<DeviceType> {};

TEST_P(DeviceBufferTest, RoundTripsEveryDtypeAndSize) {
  LARS_REQUIRE_DEVICE(GetParam());
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{4097}}) {
      testing::HostTensor t = testing::RandomTensor(dtype, n, 3);
      DeviceBuffer b = testing::ToDevice(t, Device{GetParam(), 0});
      EXPECT_EQ(b.view().numel, n);
      EXPECT_EQ(b.view().dtype, dtype);
      std::vector<uint8_t> back(t.bytes.size(), 0xAB);
      ASSERT_TRUE(b.CopyToHost(back.data()).ok());
      EXPECT_EQ(back, t.bytes) << DTypeName(dtype) << " n=" << n;
    }
  }
}

TEST_P(DeviceBufferTest, MovesWithoutDoubleFree) {
  LARS_REQUIRE_DEVICE(GetParam());
  absl::StatusOr<DeviceBuffer> a = DeviceBuffer::Allocate(Device{GetParam(), 0}, DType::kF32, 64);
  ASSERT_TRUE(a.ok()) << a.status();
  void* data = a->view().data;
  DeviceBuffer b = std::move(*a);
  EXPECT_EQ(b.view().data, data);
  EXPECT_EQ(a->view().data, nullptr);
  DeviceBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.view().data, data);
}

INSTANTIATE_TEST_SUITE_P(Backends, DeviceBufferTest,
                         ::testing::Values(DeviceType::kCPU, DeviceType::kCUDA,
                                           DeviceType::kOpenCL),
                         [](const ::testing::TestParamInfo<DeviceType>& info) {
                           return std::string(DeviceTypeName(info.param));
                         });

// A cl_mem the caller created itself (in halide_lars's context) is a valid OpenCL TensorView.
TEST(OpenCLInterop, ForeignClMemInHalidesContext) {
  LARS_REQUIRE_DEVICE(DeviceType::kOpenCL);
  absl::StatusOr<OpenCLHandles> h = GetOpenCLHandles();
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_NE(h->context, nullptr);
  ASSERT_NE(h->queue, nullptr);
  void* cl = dlopen("libOpenCL.so", RTLD_NOW | RTLD_GLOBAL);
  ASSERT_NE(cl, nullptr);
  using CreateBuffer = void* (*)(void*, uint64_t, size_t, void*, int32_t*);
  using Release = int32_t (*)(void*);
  auto create = reinterpret_cast<CreateBuffer>(dlsym(cl, "clCreateBuffer"));
  auto release = reinterpret_cast<Release>(dlsym(cl, "clReleaseMemObject"));
  ASSERT_TRUE(create && release);
  std::vector<float> host(1000);
  for (int i = 0; i < 1000; ++i) host[i] = 0.5f * (i % 7) - 1.0f;
  constexpr uint64_t kReadWriteCopyHost = (1 << 0) | (1 << 5);  // CL_MEM_READ_WRITE|COPY_HOST_PTR
  int32_t err = 0;
  void* mem = create(h->context, kReadWriteCopyHost, host.size() * 4, host.data(), &err);
  ASSERT_EQ(err, 0);
  absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(Device::OpenCL(), DType::kF32, 2);
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(SumSqMaxAbs(TensorView{mem, DType::kF32, 1000, Device::OpenCL()}, out->view()).ok());
  double ss = 0;
  for (float v : host) ss += double(v) * v;
  const std::vector<float> got = testing::ReadF32(*out);
  EXPECT_NEAR(got[0], ss, 1e-5 * ss);
  EXPECT_EQ(got[1], 2.0f);
  release(mem);
}

TEST(DeviceBuffer, RejectsBadSizes) {
  EXPECT_EQ(DeviceBuffer::Allocate(Device::Cpu(), DType::kF32, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DeviceBuffer::Allocate(Device::Cpu(), DType::kF32, int64_t{1} << 31).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Registry, EveryRowIsFindableAndNamedByItsStem) {
  ASSERT_FALSE(AllKernels().empty());
  for (const KernelInfo& k : AllKernels()) {
    absl::StatusOr<const KernelInfo*> found = FindKernelInfo(k.op, k.dtype, k.device, k.variant);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(*found, &k);
    std::string stem = std::string(OpName(k.op)) + "_" + std::string(DTypeName(k.dtype)) + "_" +
                       std::string(DeviceTypeName(k.device));
    if (k.variant[0] != '\0') stem += std::string("_") + k.variant;
    EXPECT_EQ(stem, k.name);
    EXPECT_NE(k.fn, nullptr);
  }
}

TEST(Registry, MissingCombinationIsUnimplemented) {
  const absl::StatusOr<const KernelInfo*> k =
      FindKernelInfo(Op::kNorms, DType::kF32, static_cast<DeviceType>(42));
  EXPECT_EQ(k.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(k.status().message().find("no norms kernel"), absl::string_view::npos);
}

// Every bad input is rejected with a message naming the argument, and `out` stays untouched.
TEST(NormsValidation, BadInputIsRejectedAndNothingIsWritten) {
  std::vector<float> x(8, 1.0f);
  float out[4] = {-7, -7, -7, -7};
  const TensorView good_x{x.data(), DType::kF32, 8, Device::Cpu()};
  const TensorView good_out{out, DType::kF32, 2, Device::Cpu()};
  struct Case {
    const char* what;
    TensorView x, out;
    absl::StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"null x", {nullptr, DType::kF32, 8, Device::Cpu()}, good_out,
       absl::StatusCode::kInvalidArgument, "x: null data with 8 elements"},
      {"negative numel", {x.data(), DType::kF32, -1, Device::Cpu()}, good_out,
       absl::StatusCode::kInvalidArgument, "x: -1 elements"},
      {"too large", {x.data(), DType::kF32, int64_t{1} << 31, Device::Cpu()}, good_out,
       absl::StatusCode::kInvalidArgument, "expected 0 <= numel < 2^31"},
      {"bad dtype", {x.data(), static_cast<DType>(9), 8, Device::Cpu()}, good_out,
       absl::StatusCode::kInvalidArgument, "x: unknown dtype"},
      {"null out", good_x, {nullptr, DType::kF32, 2, Device::Cpu()},
       absl::StatusCode::kInvalidArgument, "out: null data"},
      {"short out", good_x, {out, DType::kF32, 1, Device::Cpu()},
       absl::StatusCode::kInvalidArgument, "out: 1 f32 elements, expected 2 f32"},
      {"f16 out", good_x, {out, DType::kF16, 2, Device::Cpu()},
       absl::StatusCode::kInvalidArgument, "expected 2 f32"},
      {"out on another device", good_x, {out, DType::kF32, 2, Device::OpenCL()},
       absl::StatusCode::kInvalidArgument, "out: on opencl, x is on cpu"},
  };
  for (const Case& c : cases) {
    const absl::Status s = SumSqMaxAbs(c.x, c.out);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s;
    EXPECT_NE(s.message().find(c.message), absl::string_view::npos) << c.what << ": " << s;
    for (float v : out) EXPECT_EQ(v, -7.0f) << c.what;
  }
  EXPECT_TRUE(SumSqMaxAbs(good_x, good_out).ok());
  EXPECT_EQ(out[0], 8.0f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], -7.0f) << "wrote past the 2 outputs";
}

TEST(NormsValidation, EmptyTensorGivesZerosOnEveryDevice) {
  for (DeviceType type : {DeviceType::kCPU, DeviceType::kOpenCL, DeviceType::kCUDA}) {
    if (!testing::Require(type).run) continue;
    const Device dev{type, 0};
    absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(dev, DType::kF32, 2);
    ASSERT_TRUE(out.ok()) << out.status();
    const float junk[2] = {5, 5};
    ASSERT_TRUE(out->CopyFromHost(junk).ok());
    // numel 0 with a null pointer is valid.
    ASSERT_TRUE(SumSqMaxAbs(TensorView{nullptr, DType::kBF16, 0, dev}, out->view()).ok());
    EXPECT_EQ(testing::ReadF32(*out), (std::vector<float>{0.0f, 0.0f})) << DeviceName(dev);
  }
}

// A failure Halide detects inside a pipeline (here: a buffer of the wrong element type, which
// only a caller bypassing validation could pass) comes back through the per-call user_context
// with Halide's own text, instead of Halide's default handler aborting the process.
TEST(HalideErrors, PipelineErrorReachesOurHandlerThroughUserContext) {
  for (DeviceType type : {DeviceType::kCPU, DeviceType::kOpenCL}) {
    if (!testing::Require(type).run) continue;
    const Device dev{type, 0};
    absl::StatusOr<DeviceBuffer> x = DeviceBuffer::Allocate(dev, DType::kF16, 100);
    absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(dev, DType::kF32, 2);
    ASSERT_TRUE(x.ok() && out.ok());
    absl::StatusOr<KernelSignature<Op::kNorms>::type> f32_kernel =
        FindKernel<Op::kNorms>(DType::kF32, type);
    ASSERT_TRUE(f32_kernel.ok());
    internal::CallContext ctx;
    ASSERT_TRUE(internal::MakeCallContext(dev, {}, &ctx).ok());
    internal::BufferView xb(x->view(), &ctx), ob(out->view(), &ctx);
    const int rc = (*f32_kernel)(&ctx, xb.raw(), ob.raw());
    const absl::Status s = internal::HalideError("norms_f32", rc, ctx);
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
    EXPECT_NE(s.message().find("type"), absl::string_view::npos) << s;
    std::printf("%s reported: %s\n", DeviceName(dev).c_str(), s.ToString().c_str());
  }
}

}  // namespace
}  // namespace halide_lars
