// Fuzz target: the C ABI driven by a byte program. Each byte picks a call (create, destroy,
// add param, set grad, override, step, save/load, bad handles, bad tensors...) with arguments
// taken from the following bytes. Invariants: no crash; every call returns a defined
// lars_status_t; a failed call leaves lars_last_error() non-empty.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "halide_lars/lars_c.h"

namespace {

struct Reader {
  const uint8_t* p;
  size_t n;
  uint8_t Byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  double Number() {
    static const double kValues[] = {0.0, 0.1, -1.0, 0.9, 1e30, NAN, INFINITY, 2.0, 8, 32, 100, 5};
    return kValues[Byte() % 12];
  }
};

void Check(lars_status_t s) {
  if (s < LARS_OK || s > LARS_UNAUTHENTICATED) std::abort();
  if (s != LARS_OK && lars_last_error()[0] == '\0') std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r{data, size};
  std::vector<lars_optimizer_t*> opts;
  std::vector<std::vector<float>> mem(4, std::vector<float>(4100, 0.25f));
  std::vector<uint8_t> ckpt;
  static const char* kNames[] = {"w", "b", "", "w2"};
  static const char* kKeys[] = {"lr", "momentum", "optim_bits", "trust_mode", "nonfinite",
                                "weight_decay", "bogus", "block_size", "percentile_clipping"};
  static const char* kText[] = {"clip", "classic", "none", "skip", "error", "x"};
  int calls = 0;
  while (r.n > 0 && calls++ < 64) {
    lars_optimizer_t* opt = opts.empty() ? nullptr : opts[r.Byte() % opts.size()];
    switch (r.Byte() % 12) {
      case 0: {
        lars_options_t o;
        Check(lars_options_default(&o));
        o.lr = r.Number();
        o.momentum = r.Number();
        o.optim_bits = static_cast<int32_t>(r.Number());
        lars_optimizer_t* created = nullptr;
        const lars_status_t s = lars_create(&o, &created);
        Check(s);
        if (s == LARS_OK) opts.push_back(created);
        break;
      }
      case 1:
        Check(lars_destroy(opt));  // may be a destroyed handle: must be an error, not a crash
        break;
      case 2: {
        int64_t shape[1] = {static_cast<int64_t>(r.Byte()) * 17 + (r.Byte() % 2 ? 4096 : 0)};
        if (shape[0] > 4100) shape[0] = 4100;
        DLTensor p{}, g{};
        p.data = mem[r.Byte() % 4].data();
        g.data = mem[r.Byte() % 4].data();
        for (DLTensor* t : {&p, &g}) {
          t->device = {static_cast<DLDeviceType>(1 + r.Byte() % 3 * (r.Byte() % 2)), 0};
          t->ndim = 1;
          t->dtype = {static_cast<uint8_t>(r.Byte() % 3 == 0 ? kDLInt : kDLFloat),
                      static_cast<uint8_t>(r.Byte() % 2 ? 32 : 16), 1};
          t->shape = shape;
        }
        Check(lars_add_param(opt, kNames[r.Byte() % 4], &p, r.Byte() % 3 ? &g : nullptr,
                             r.Byte() % 3));
        break;
      }
      case 3:
        Check(lars_override(opt, kNames[r.Byte() % 4], kKeys[r.Byte() % 9], r.Number()));
        break;
      case 4:
        Check(lars_override_str(opt, kNames[r.Byte() % 4], kKeys[r.Byte() % 9], kText[r.Byte() % 6]));
        break;
      case 5:
        Check(lars_step(opt, nullptr));
        break;
      case 6: {
        size_t n = 0;
        lars_status_t s = lars_save_state(opt, nullptr, 0, &n);
        Check(s);
        if (s == LARS_OK) {
          ckpt.resize(n);
          Check(lars_save_state(opt, ckpt.data(), ckpt.size(), &n));
        }
        break;
      }
      case 7:
        if (!ckpt.empty() && r.Byte() % 2) ckpt[r.Byte() % ckpt.size()] ^= 1;
        Check(lars_load_state(opt, ckpt.data(), ckpt.size()));
        break;
      case 8: {
        int32_t group;
        Check(lars_add_param_group(opt, &group));
        Check(lars_set_group_option(opt, static_cast<int32_t>(r.Byte() % 4), kKeys[r.Byte() % 9],
                                    r.Number()));
        break;
      }
      case 9: {
        int64_t v;
        Check(lars_state_size(opt, &v));
        Check(lars_param_step(opt, kNames[r.Byte() % 4], &v));
        break;
      }
      case 10:
        Check(lars_set_grad(opt, kNames[r.Byte() % 4], nullptr));
        break;
      default: {
        std::vector<float> m(4100);
        Check(lars_get_momentum(opt, kNames[r.Byte() % 4], m.data(), r.Byte() % 2 ? 4100 : 17));
      }
    }
  }
  for (lars_optimizer_t* o : opts) lars_destroy(o);
  return 0;
}
