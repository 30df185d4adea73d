#include "c_api/c_handles.h"

#include "absl/base/const_init.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace halide_lars {
namespace c_api {
namespace {

thread_local std::string last_error;

absl::Mutex handles_mu(absl::kConstInit);
absl::flat_hash_set<const lars_optimizer*>& Handles() ABSL_EXCLUSIVE_LOCKS_REQUIRED(handles_mu) {
  static auto* h = new absl::flat_hash_set<const lars_optimizer*>;
  return *h;
}

}  // namespace

const std::string& LastError() { return last_error; }

lars_status_t Report(const absl::Status& s) {
  last_error = s.ok() ? "" : std::string(s.message());
  return static_cast<lars_status_t>(s.code());
}

void RegisterHandle(const lars_optimizer* opt) {
  absl::MutexLock lock(&handles_mu);
  Handles().insert(opt);
}

bool UnregisterHandle(const lars_optimizer* opt) {
  absl::MutexLock lock(&handles_mu);
  return Handles().erase(opt) != 0;
}

absl::Status CheckHandle(const lars_optimizer* opt) {
  if (opt == nullptr) return absl::InvalidArgumentError("optimizer: null handle");
  absl::MutexLock lock(&handles_mu);
  if (!Handles().contains(opt)) {
    return absl::InvalidArgumentError("optimizer: not a live handle (destroyed or never created)");
  }
  return absl::OkStatus();
}

absl::Status CheckString(const char* s, const char* what) {
  if (s == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": null string"));
  return absl::OkStatus();
}

}  // namespace c_api
}  // namespace halide_lars
