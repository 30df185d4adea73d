// LARS_RETURN_IF_ERROR / LARS_ASSIGN_OR_RETURN: Debian's Abseil 20220623 predates
// absl/status/status_macros.h. Replace with the ABSL_ macros once the floor has them.
#ifndef HALIDE_LARS_BASE_STATUS_MACROS_H_
#define HALIDE_LARS_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LARS_STATUS_CONCAT_INNER_(a, b) a##b
#define LARS_STATUS_CONCAT_(a, b) LARS_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function if not ok.
#define LARS_RETURN_IF_ERROR(expr)                                     \
  do {                                                                 \
    ::absl::Status lars_status_ = (expr);                              \
    if (!lars_status_.ok()) return lars_status_;                       \
  } while (0)

// `lhs = *statusor_expr;` or returns its status from the enclosing function.
#define LARS_ASSIGN_OR_RETURN(lhs, expr) \
  LARS_ASSIGN_OR_RETURN_IMPL_(LARS_STATUS_CONCAT_(lars_statusor_, __LINE__), lhs, expr)
#define LARS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(*tmp)

#endif  // HALIDE_LARS_BASE_STATUS_MACROS_H_
