// The checkpoint's byte format (Lars::SaveState / LoadState), apart from the optimizer
// (little-endian, version 2; version 1, which lacks the shard fields, still loads as unsharded):
//   "HLARSCKP" | u32 version | options: defaults | u32 groups, each options |
//   u32 params, each: string name | i32 group | options overrides | i64 step | u8 kind |
//     i32 block_size | i32 dtype | i64 numel | i64 shard_offset | i64 full_numel (-1: not a
//     shard) | f32[] momentum | u8[] codes | f32[] absmax |
//     f32[] norms | f32[] gscale | u8 gscale_is_one | f32[] ring | f32[] gnorm |
//   u32 crc32 (zlib) of every byte before it.
// options: u32 count, each: string key | u8 kind (0 number, 1 bool, 2 text) | f64 or string.
// arrays: u64 count, then the elements.
#ifndef HALIDE_LARS_LARS_CHECKPOINT_FORMAT_H_
#define HALIDE_LARS_LARS_CHECKPOINT_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "halide_lars/options.h"

namespace halide_lars {

// One parameter's state on the host.
struct SavedParam {
  std::string name;
  int32_t group = 0;
  OptionOverrides overrides;
  int64_t step = 0;
  uint8_t kind = 0;
  int32_t block_size = 0;
  int32_t dtype = 0;
  int64_t numel = 0;
  int64_t shard_offset = 0, full_numel = -1;
  std::vector<float> momentum, absmax, norms, gscale, ring, gnorm;
  std::vector<uint8_t> codes;
  uint8_t gscale_is_one = 1;
};

// A checkpoint read back: the optimizer's defaults, its groups' options, every parameter.
struct ParsedCheckpoint {
  LarsOptions defaults;
  std::vector<OptionOverrides> groups;
  std::vector<SavedParam> params;
};

// The bytes of a checkpoint (the format above, CRC last).
std::string SerializeCheckpoint(const LarsOptions& defaults,
                                const std::vector<OptionOverrides>& groups,
                                const std::vector<SavedParam>& saved);
// Checks size, magic, version and CRC, then parses every record (bounds-checked lengths): a
// DataLoss naming what is wrong (FailedPrecondition for a version this build does not read).
// Shapes and names are checked against an optimizer by Lars::LoadState.
absl::StatusOr<ParsedCheckpoint> ParseCheckpoint(absl::string_view bytes);
// DataLoss "checkpoint: <what>".
absl::Status CorruptCheckpoint(absl::string_view what);

}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_CHECKPOINT_FORMAT_H_
