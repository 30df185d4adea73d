// The CPU kernels' threads fit the host program (runtime/thread_pool.h): a caller bound to one
// CPU still gets workers that may run on every CPU the process may use (their affinity masks
// are read, not timed), a thread budget is never exceeded (the threads that ran pieces are
// counted), a failing piece's code comes back, and Lars steps are bit-identical (parameters and
// every byte of state) for budgets 1, 2 and the maximum, from a bound caller too.
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "runtime/thread_pool.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using internal::AllowedCpus;
using internal::ParallelFor;
using internal::PoolWorkers;

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

int CpuCount(const cpu_set_t& s) { return CPU_COUNT(&s); }

int FirstCpu(const cpu_set_t& s) {
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &s)) return c;
  }
  return -1;
}

// Binds the calling thread to one CPU for its lifetime, then restores its mask.
class BindCaller {
 public:
  explicit BindCaller(int cpu) {
    pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    EXPECT_EQ(pthread_setaffinity_np(pthread_self(), sizeof(one), &one), 0);
  }
  ~BindCaller() { pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_); }

 private:
  cpu_set_t saved_;
};

// What one ParallelFor saw: the threads that ran pieces, their masks' sizes and their CPUs.
struct Seen {
  std::mutex mu;
  std::set<pid_t> tids;
  std::set<int> mask_sizes, cpus;
};

int RecordPiece(void* uc, int /*i*/, uint8_t* /*closure*/) {
  auto* seen = static_cast<Seen*>(uc);
  cpu_set_t mask;
  sched_getaffinity(0, sizeof(mask), &mask);
  // Long enough for every worker to wake and take pieces (correctness does not depend on it).
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::lock_guard<std::mutex> lock(seen->mu);
  seen->tids.insert(Tid());
  seen->mask_sizes.insert(CpuCount(mask));
  seen->cpus.insert(sched_getcpu());
  return 0;
}

TEST(ThreadPoolTest, BoundCallerStillGetsTheProcessCpus) {
  const cpu_set_t allowed = AllowedCpus();
  if (CpuCount(allowed) < 2) GTEST_SKIP() << "this process may use only one CPU";
  BindCaller bind(FirstCpu(allowed));
  Seen seen;
  ASSERT_EQ(ParallelFor(2, &seen, RecordPiece, 0, 64, nullptr), 0);
  EXPECT_EQ(seen.tids.size(), 2u) << "a budget of 2 ran on " << seen.tids.size() << " threads";
  // The caller's own mask is 1 CPU; its worker's is every CPU the process may use.
  EXPECT_EQ(seen.mask_sizes, (std::set<int>{1, CpuCount(allowed)}));
  for (pid_t w : PoolWorkers()) {
    cpu_set_t m;
    ASSERT_EQ(sched_getaffinity(w, sizeof(m), &m), 0);
    EXPECT_TRUE(CPU_EQUAL(&m, &allowed)) << "worker " << w << " has " << CpuCount(m) << " CPUs";
  }
  std::string cpus;
  for (int c : seen.cpus) cpus += std::to_string(c) + " ";
  std::printf("bound caller: pieces ran on CPUs %s(2 threads)\n", cpus.c_str());
}

TEST(ThreadPoolTest, BudgetIsObeyed) {
  for (int budget : {1, 2, 3}) {
    Seen seen;
    ASSERT_EQ(ParallelFor(budget, &seen, RecordPiece, 10, 48, nullptr), 0);
    EXPECT_LE(static_cast<int>(seen.tids.size()), budget) << "budget " << budget;
    if (budget == 1) {
      EXPECT_EQ(seen.tids, std::set<pid_t>{Tid()}) << "budget 1: the caller only";
    }
  }
  EXPECT_LE(PoolWorkers().size(), 2u) << "budgets up to 3 need at most 2 workers";
}

TEST(ThreadPoolTest, EveryPieceRunsOnceAndFailuresComeBack) {
  std::vector<std::atomic<int>> runs(1000);
  auto count = [](void* uc, int i, uint8_t*) -> int {
    (*static_cast<std::vector<std::atomic<int>>*>(uc))[i - 7]++;
    return 0;
  };
  ASSERT_EQ(ParallelFor(4, &runs, count, 7, 1000, nullptr), 0);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(runs[i].load(), 1) << "piece " << i;
  auto fail = [](void*, int i, uint8_t*) -> int { return i == 5 ? 42 : 0; };
  EXPECT_EQ(ParallelFor(2, nullptr, fail, 0, 100, nullptr), 42);
  EXPECT_EQ(ParallelFor(1, nullptr, fail, 0, 100, nullptr), 42);
}

// Params and the whole checkpoint (every byte of state) after 6 steps with a thread budget.
std::pair<std::vector<double>, std::string> Train(int bits, int threads, bool bound) {
  const Device cpu = Device::Cpu();
  DeviceBuffer p = testing::ToDevice(testing::RandomTensor(DType::kF32, (1 << 20) + 3, 1), cpu);
  DeviceBuffer g = testing::ToDevice(testing::RandomTensor(DType::kF32, (1 << 20) + 3, 2), cpu);
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 1e-3;
  o.optim_bits = bits;
  o.percentile_clipping = 50;
  absl::StatusOr<Lars> opt = Lars::Create(o);
  EXPECT_TRUE(opt.ok()) << opt.status();
  EXPECT_TRUE(opt->AddParam("w", p.view(), g.view()).ok());
  EXPECT_TRUE(opt->SetNumThreads(threads).ok());
  std::unique_ptr<BindCaller> bind;
  if (bound) bind = std::make_unique<BindCaller>(FirstCpu(AllowedCpus()));
  for (int s = 0; s < 6; ++s) {
    const absl::Status st = opt->Step();
    EXPECT_TRUE(st.ok()) << st;
  }
  absl::StatusOr<std::string> ckpt = opt->SaveState();
  EXPECT_TRUE(ckpt.ok());
  return {testing::ReadValues(p), *ckpt};
}

TEST(ThreadPoolTest, ABoundCallersStepRunsOnTheWorkers) {
  const cpu_set_t allowed = AllowedCpus();
  if (CpuCount(allowed) < 2) GTEST_SKIP() << "this process may use only one CPU";
  const int64_t before = internal::WorkerPieces(), jobs_before = internal::PoolJobs();
  Train(32, 2, /*bound=*/true);  // Halide's parallel loops -> DoParFor -> the pool
  const int64_t pieces = internal::WorkerPieces() - before;
  // Deterministic: the loops were handed to the pool with a worker to help (whether the worker
  // got a piece before the caller took them all depends on scheduling, so it is only printed).
  EXPECT_GT(internal::PoolJobs() - jobs_before, 0) << "the step's loops never reached the pool";
  ASSERT_FALSE(PoolWorkers().empty());
  for (pid_t w : PoolWorkers()) {
    cpu_set_t m;
    ASSERT_EQ(sched_getaffinity(w, sizeof(m), &m), 0);
    EXPECT_TRUE(CPU_EQUAL(&m, &allowed)) << "worker " << w << " has " << CpuCount(m) << " CPUs";
  }
  std::printf("a one-CPU caller's 6 steps: %lld loop pieces ran on workers with %d CPUs\n",
              static_cast<long long>(pieces), CpuCount(allowed));
}

TEST(ThreadPoolTest, StepsAreBitIdenticalForEveryBudget) {
  const int most = internal::DefaultThreads();
  for (int bits : {32, 8}) {
    const auto one = Train(bits, 1, false);
    for (int threads : {2, most, 0}) {
      for (bool bound : {false, true}) {
        const auto other = Train(bits, threads, bound);
        EXPECT_EQ(other.first, one.first) << bits << "-bit, " << threads << " threads";
        EXPECT_EQ(other.second, one.second) << bits << "-bit state, " << threads << " threads";
      }
    }
  }
}

TEST(ThreadPoolTest, NegativeBudgetIsRefused) {
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  absl::StatusOr<Lars> opt = Lars::Create(o);
  ASSERT_TRUE(opt.ok());
  EXPECT_EQ(opt->SetNumThreads(-1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(opt->num_threads(), 0);
  EXPECT_TRUE(opt->SetNumThreads(3).ok());
  EXPECT_EQ(opt->num_threads(), 3);
}

}  // namespace
}  // namespace halide_lars
