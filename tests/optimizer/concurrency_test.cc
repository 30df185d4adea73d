// Two (and four) optimizers stepping at the same time on different threads give bit-identical
// results to stepping them one after the other: the Halide runtime (thread pool, error handler,
// device hooks, codebook cache) is shared safely. CPU and the OpenCL backend.
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

struct Job {
  DeviceBuffer p, g;
  std::unique_ptr<Lars> opt;
  std::vector<double> result;
};

std::unique_ptr<Job> MakeJob(const Device& dev, int seed) {
  auto job = std::make_unique<Job>();
  const int64_t n = 70001;
  job->p = testing::ToDevice(testing::RandomTensor(DType::kF32, n, seed), dev);
  job->g = testing::ToDevice(testing::RandomTensor(DType::kF32, n, seed + 100), dev);
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 1e-3;
  o.percentile_clipping = seed % 2 ? 30 : 100;
  o.optim_bits = seed % 3 == 0 ? 8 : 32;
  job->opt = std::make_unique<Lars>(*Lars::Create(o));
  EXPECT_TRUE(job->opt->AddParam("w", job->p.view(), job->g.view()).ok());
  return job;
}

void RunSteps(Job* job, int steps) {
  for (int s = 0; s < steps; ++s) {
    const absl::Status st = job->opt->Step();
    ASSERT_TRUE(st.ok()) << st;
  }
  job->result = testing::ReadValues(job->p);
}

class ConcurrencyTest : public ::testing::TestWithParam<DeviceType> {};

TEST_P(ConcurrencyTest, ParallelOptimizersMatchSequentialOnes) {
  LARS_REQUIRE_DEVICE(GetParam());
  const Device dev{GetParam(), 0};
  for (int threads : {2, 4}) {
    std::vector<std::unique_ptr<Job>> sequential, parallel;
    for (int i = 0; i < threads; ++i) {
      sequential.push_back(MakeJob(dev, i));
      parallel.push_back(MakeJob(dev, i));
    }
    for (auto& j : sequential) RunSteps(j.get(), 20);
    std::vector<std::thread> pool;
    for (auto& j : parallel) pool.emplace_back(RunSteps, j.get(), 20);
    for (std::thread& t : pool) t.join();
    for (int i = 0; i < threads; ++i) {
      EXPECT_EQ(parallel[i]->result, sequential[i]->result) << "job " << i << " of " << threads;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ConcurrencyTest,
                         ::testing::Values(DeviceType::kCPU, DeviceType::kOpenCL, DeviceType::kCUDA),
                         [](const ::testing::TestParamInfo<DeviceType>& info) {
                           return std::string(DeviceTypeName(info.param));
                         });

}  // namespace
}  // namespace halide_lars
