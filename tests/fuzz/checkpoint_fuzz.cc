// Fuzz target: Lars::LoadState on arbitrary bytes. Invariants: no crash; a rejected checkpoint
// leaves the live optimizer byte-for-byte unchanged; an accepted one can be stepped and saved.
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "halide_lars/lars.h"

namespace {

struct Fixture {
  std::vector<float> a = std::vector<float>(5000, 0.5f), ga = std::vector<float>(5000, 0.1f);
  std::vector<float> b = std::vector<float>(7, 0.5f), gb = std::vector<float>(7, 0.1f);
  halide_lars::Lars opt;
  std::string before;

  static halide_lars::Lars Make() {
    halide_lars::LarsOptions o;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.percentile_clipping = 50;
    return *halide_lars::Lars::Create(o);
  }
  Fixture() : opt(Make()) {
    using halide_lars::DType;
    const halide_lars::Device cpu = halide_lars::Device::Cpu();
    (void)opt.AddParam("a", {a.data(), DType::kF32, 5000, cpu}, {ga.data(), DType::kF32, 5000, cpu});
    (void)opt.AddParam("b", {b.data(), DType::kF32, 7, cpu}, {gb.data(), DType::kF32, 7, cpu});
    (void)opt.OverrideConfig("a", "optim_bits", 8);
    (void)opt.Step();
    before = *opt.SaveState();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = new Fixture;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  // Half the inputs get a correct CRC-32, so mutations reach the parser and its validation
  // instead of stopping at the checksum.
  if (size > 12 && (data[size / 2] & 1)) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size() - 4));
    std::memcpy(&bytes[bytes.size() - 4], &crc, 4);
  }
  const absl::Status s = f->opt.LoadState(bytes);
  if (!s.ok()) {
    if (*f->opt.SaveState() != f->before) {
      std::fprintf(stderr, "a rejected checkpoint changed the optimizer: %s\n",
                   s.ToString().c_str());
      std::abort();
    }
    return 0;
  }
  // Accepted: the optimizer must still work. Restore the fixture afterwards.
  if (!f->opt.SaveState().ok()) std::abort();
  (void)f->opt.Step();
  if (!f->opt.LoadState(f->before).ok()) std::abort();
  return 0;
}
