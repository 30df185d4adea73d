// The C ABI's handles and error reporting: the optimizer handle (a Lars shared with exported
// state tensors), the live-handle set (a destroyed or foreign handle is reported, never
// dereferenced), lars_last_error()'s thread-local text, and Guarded, which every entry point
// runs its body in.
#ifndef HALIDE_LARS_C_API_C_HANDLES_H_
#define HALIDE_LARS_C_API_C_HANDLES_H_

#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "halide_lars/lars.h"
#include "halide_lars/lars_c.h"

struct lars_optimizer {
  explicit lars_optimizer(halide_lars::Lars l)
      : owner(std::make_shared<halide_lars::Lars>(std::move(l))), lars(*owner) {}
  // Shared with exported state tensors (lars_export_state), which keep it alive after destroy.
  std::shared_ptr<halide_lars::Lars> owner;
  halide_lars::Lars& lars;
};

namespace halide_lars {
namespace c_api {

// The text lars_last_error() returns: this thread's last error ("" after a success).
const std::string& LastError();

// Records `s` as this thread's last error and returns its code.
lars_status_t Report(const absl::Status& s);

// Runs `f` (returning absl::Status) with every exception turned into an error code.
template <typename F>
lars_status_t Guarded(F&& f) {
  try {
    return Report(f());
  } catch (const std::bad_alloc&) {
    return Report(absl::ResourceExhaustedError("out of memory"));
  } catch (const std::exception& e) {
    return Report(absl::InternalError(absl::StrCat("unexpected exception: ", e.what())));
  } catch (...) {
    return Report(absl::InternalError("unexpected exception"));
  }
}

// The handle set: Register after creation, Unregister before destruction.
void RegisterHandle(const lars_optimizer* opt);
// False when `opt` was not live (nothing is changed then).
bool UnregisterHandle(const lars_optimizer* opt);
// InvalidArgument unless `opt` is a live handle.
absl::Status CheckHandle(const lars_optimizer* opt);
// InvalidArgument naming `what` for a null string.
absl::Status CheckString(const char* s, const char* what);

}  // namespace c_api
}  // namespace halide_lars

#endif  // HALIDE_LARS_C_API_C_HANDLES_H_
