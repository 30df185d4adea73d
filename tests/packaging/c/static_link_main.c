/* Links libhalide_lars.a with plain gcc (C99) and g++ (for the C++ runtime), no Bazel rules.
 * Trains one 4099-element parameter for 5 steps with bitsandbytes-style LARS (momentum 0.9,
 * weight decay, trust clip) and checks the result against a float64 evaluation of the same
 * steps computed here, printing both. Exit status 0 only if they agree to 1e-6. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "halide_lars/lars_c.h"

#define N 4099
#define STEPS 5

static float p[N], g[N];
static double rp[N], rm[N];

static int check(lars_status_t s, const char* what) {
  if (s != LARS_OK) {
    fprintf(stderr, "%s failed (%d): %s\n", what, (int)s, lars_last_error());
    exit(1);
  }
  return 0;
}

static DLTensor view(float* data) {
  static int64_t shape[1] = {N};
  DLTensor t = {0};
  t.data = data;
  t.device.device_type = kDLCPU;
  t.ndim = 1;
  t.dtype.code = kDLFloat;
  t.dtype.bits = 32;
  t.dtype.lanes = 1;
  t.shape = shape;
  return t;
}

int main(void) {
  const double lr = 0.1, mom = 0.9, wd = 0.01, max_unorm = 0.02;
  lars_options_t o;
  lars_optimizer_t* opt = NULL;
  int i, step;
  double err = 0.0, norm = 0.0;
  printf("%s, C ABI %d\n", lars_version(), lars_abi_version());
  check(lars_options_default(&o), "lars_options_default");
  /* lr is required: creating without it must fail cleanly with a message. */
  if (lars_create(&o, &opt) == LARS_OK) return 1;
  printf("without lr: %s\n", lars_last_error());
  o.lr = lr;
  o.momentum = mom;
  o.weight_decay = wd;
  check(lars_create(&o, &opt), "lars_create");
  for (i = 0; i < N; ++i) rp[i] = p[i] = (float)sin(0.01 * i);
  {
    DLTensor tp = view(p), tg = view(g);
    check(lars_add_param(opt, "w", &tp, &tg, 0), "lars_add_param");
  }
  for (step = 1; step <= STEPS; ++step) {
    double pn = 0, un = 0, scale;
    for (i = 0; i < N; ++i) g[i] = (float)(cos(0.003 * i * step) * 0.5);
    check(lars_step(opt, NULL), "lars_step");
    /* float64 reference of the same step (docs/spec.md). */
    for (i = 0; i < N; ++i) {
      double d = (double)g[i] + wd * rp[i];
      rm[i] = step == 1 ? d : mom * rm[i] + d;
      pn += rp[i] * rp[i];
      un += rm[i] * rm[i];
    }
    pn = sqrt(pn);
    un = sqrt(un);
    scale = un > max_unorm * pn ? max_unorm * pn / un : 1.0;
    for (i = 0; i < N; ++i) rp[i] = (float)(rp[i] - lr * scale * rm[i]);
  }
  for (i = 0; i < N; ++i) {
    err += (p[i] - rp[i]) * (p[i] - rp[i]);
    norm += rp[i] * rp[i];
  }
  err = sqrt(err / norm);
  printf("p[0..3] halide_lars: %.7f %.7f %.7f %.7f\n", p[0], p[1], p[2], p[3]);
  printf("p[0..3] reference:   %.7f %.7f %.7f %.7f\n", rp[0], rp[1], rp[2], rp[3]);
  printf("relative error after %d steps: %.3g\n", STEPS, err);
  {
    int64_t steps = 0, bytes = 0;
    check(lars_param_step(opt, "w", &steps), "lars_param_step");
    check(lars_state_size(opt, &bytes), "lars_state_size");
    printf("steps %lld, state %lld bytes\n", (long long)steps, (long long)bytes);
    if (steps != STEPS) return 1;
  }
  check(lars_destroy(opt), "lars_destroy");
  if (lars_step(opt, NULL) == LARS_OK) return 1; /* a destroyed handle is an error, not a crash */
  printf("after destroy: %s\n", lars_last_error());
  return err <= 1e-6 ? 0 : 1;
}
