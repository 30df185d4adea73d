#include "runtime/thread_pool.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "runtime/halide_call.h"

namespace halide_lars {
namespace internal {
namespace {

// The loading thread's mask, before a host program may bind it (OMP_PROC_BIND binds the thread
// that runs the first parallel region; a job script may bind its main thread later).
const cpu_set_t kMaskAtLoad = [] {
  cpu_set_t s;
  CPU_ZERO(&s);
  if (sched_getaffinity(0, sizeof(s), &s) != 0) CPU_SET(0, &s);
  return s;
}();

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

thread_local bool in_worker = false;

int EnvThreads(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return 0;
  const int n = std::atoi(v);  // OMP_NUM_THREADS may be a list ("4,2"): its first value
  return n > 0 ? n : 0;
}

class Pool {
 public:
  int Run(int threads, void* uc, int (*task)(void*, int, uint8_t*), int min, int size,
          uint8_t* closure) {
    std::lock_guard<std::mutex> one_job(run_mu_);  // concurrent callers take turns
    std::unique_lock<std::mutex> lock(mu_);
    const int helpers = std::min(threads, size) - 1;
    while (static_cast<int>(workers_.size()) < helpers) {
      const int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index, gen = generation_] { Work(index, gen); });
      workers_.back().detach();
    }
    task_ = task;
    uc_ = uc;
    closure_ = closure;
    min_ = min;
    size_ = size;
    next_.store(0);
    result_.store(0);
    participants_ = helpers;
    ++jobs_;
    active_ = helpers;
    ++generation_;
    lock.unlock();
    wake_.notify_all();
    in_worker = true;  // a nested loop of the caller's own pieces runs inline
    RunPieces();
    in_worker = false;
    lock.lock();
    done_.wait(lock, [this] { return active_ == 0; });
    return result_.load();
  }

  std::vector<pid_t> Workers() {
    std::lock_guard<std::mutex> lock(mu_);
    return tids_;
  }

  int64_t worker_pieces() const { return worker_pieces_.load(); }
  int64_t jobs() {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs_;
  }

 private:
  void RunPieces(bool worker = false) {
    for (int i = next_.fetch_add(1); i < size_; i = next_.fetch_add(1)) {
      if (result_.load(std::memory_order_relaxed) != 0) continue;  // a piece failed: stop
      const int r = task_(uc_, min_ + i, closure_);
      if (r != 0) result_.store(r);
      if (worker) worker_pieces_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void Work(int index, uint64_t seen) {
    in_worker = true;
    cpu_set_t allowed = AllowedCpus();
    pthread_setaffinity_np(pthread_self(), sizeof(allowed), &allowed);
    std::unique_lock<std::mutex> lock(mu_);
    tids_.push_back(Tid());
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (index >= participants_) continue;
      lock.unlock();
      RunPieces(/*worker=*/true);
      lock.lock();
      if (--active_ == 0) done_.notify_one();
    }
  }

  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::vector<pid_t> tids_;
  uint64_t generation_ = 0;
  int64_t jobs_ = 0;
  int participants_ = 0;
  int active_ = 0;
  int (*task_)(void*, int, uint8_t*) = nullptr;
  void* uc_ = nullptr;
  uint8_t* closure_ = nullptr;
  int min_ = 0, size_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> result_{0};
  std::atomic<int64_t> worker_pieces_{0};
};

Pool& ThePool() {
  static Pool* pool = new Pool;  // never destroyed: its detached workers outlive main()
  return *pool;
}

}  // namespace

namespace {

// A kernel CPU list ("0-3,8,10-11") as a set; false if it does not parse.
bool ParseCpuList(const std::string& text, cpu_set_t* out) {
  CPU_ZERO(out);
  std::stringstream in(text);
  std::string range;
  bool any = false;
  while (std::getline(in, range, ',')) {
    if (range.empty() || range == "\n") continue;
    int lo = 0, hi = 0;
    if (std::sscanf(range.c_str(), "%d-%d", &lo, &hi) != 2) {
      if (std::sscanf(range.c_str(), "%d", &lo) != 1) return false;
      hi = lo;
    }
    for (int c = lo; c <= hi && c < CPU_SETSIZE; ++c) CPU_SET(c, out);
    any = true;
  }
  return any;
}

bool ReadCpuList(const std::string& path, cpu_set_t* out) {
  std::ifstream f(path);
  std::string line;
  return f && std::getline(f, line) && ParseCpuList(line, out);
}

// The CPUs this process's cgroup lets it use (cpuset v2 or v1), else every online CPU: what
// sched_setaffinity may widen a thread to.
cpu_set_t CpusetCpus() {
  cpu_set_t s;
  std::ifstream cg("/proc/self/cgroup");
  std::string line;
  while (std::getline(cg, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controllers.empty() &&  // cgroup v2
        (ReadCpuList("/sys/fs/cgroup" + path + "/cpuset.cpus.effective", &s) ||
         ReadCpuList("/sys/fs/cgroup/unified" + path + "/cpuset.cpus.effective", &s))) {
      return s;
    }
    if (controllers == "cpuset" &&  // cgroup v1
        ReadCpuList("/sys/fs/cgroup/cpuset" + path + "/cpuset.effective_cpus", &s)) {
      return s;
    }
  }
  if (!ReadCpuList("/sys/devices/system/cpu/online", &s)) s = kMaskAtLoad;
  return s;
}

// Whether OpenMP binds threads (OMP_PROC_BIND other than false, or OMP_PLACES): then the
// thread that loaded us may already hold one place only, before any of OpenMP's workers exist.
bool OpenMPBinds() {
  const char* bind = std::getenv("OMP_PROC_BIND");
  if (bind != nullptr && std::strlen(bind) > 0 && std::strncmp(bind, "false", 5) != 0 &&
      std::strncmp(bind, "FALSE", 5) != 0) {
    return true;
  }
  return std::getenv("OMP_PLACES") != nullptr;
}

cpu_set_t ComputeAllowedCpus() {
  cpu_set_t all = kMaskAtLoad;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* e = readdir(dir)) {
      const int tid = std::atoi(e->d_name);
      cpu_set_t s;
      if (tid > 0 && sched_getaffinity(tid, sizeof(s), &s) == 0) CPU_OR(&all, &all, &s);
    }
    closedir(dir);
  }
  // OpenMP's binding of the loading thread says nothing about the process's CPUs (its places
  // span the process's mask); a taskset/numactl limit without OpenMP binding stays as it is.
  if (OpenMPBinds()) {
    cpu_set_t cpuset = CpusetCpus();
    CPU_OR(&all, &all, &cpuset);
  }
  return all;
}

}  // namespace

cpu_set_t AllowedCpus() {
  // Cached for a second: it is asked for at every parallel loop, and reading every thread's
  // mask costs tens of microseconds.
  static std::mutex mu;
  static cpu_set_t cached;
  static std::chrono::steady_clock::time_point at;
  static bool valid = false;
  std::lock_guard<std::mutex> lock(mu);
  const auto now = std::chrono::steady_clock::now();
  if (!valid || now - at > std::chrono::seconds(1)) {
    cached = ComputeAllowedCpus();
    at = now;
    valid = true;
  }
  return cached;
}

int DefaultThreads() {
  if (int n = EnvThreads("HL_NUM_THREADS")) return n;
  if (int n = EnvThreads("OMP_NUM_THREADS")) return n;
  cpu_set_t s = AllowedCpus();
  return std::max(1, CPU_COUNT(&s));
}

int ParallelFor(int num_threads, void* user_context, int (*task)(void*, int, uint8_t*), int min,
                int size, uint8_t* closure) {
  const int threads = num_threads > 0 ? num_threads : DefaultThreads();
  if (threads <= 1 || size <= 1 || in_worker) {
    for (int i = min; i < min + size; ++i) {
      if (int r = task(user_context, i, closure)) return r;
    }
    return 0;
  }
  return ThePool().Run(threads, user_context, task, min, size, closure);
}

int DoParFor(void* user_context, int (*task)(void*, int, uint8_t*), int min, int size,
             uint8_t* closure) {
  const auto* ctx = static_cast<const CallContext*>(user_context);
  return ParallelFor(ctx != nullptr ? ctx->num_threads : 0, user_context, task, min, size,
                     closure);
}

std::vector<pid_t> PoolWorkers() { return ThePool().Workers(); }

int64_t WorkerPieces() { return ThePool().worker_pieces(); }

int64_t PoolJobs() { return ThePool().jobs(); }

}  // namespace internal
}  // namespace halide_lars
