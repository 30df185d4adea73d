// A minimal PNG writer and line plotter (zlib for deflate and CRC-32), so the demo draws its
// loss curves without any plotting package.
#ifndef HALIDE_LARS_EXAMPLES_PNG_H_
#define HALIDE_LARS_EXAMPLES_PNG_H_

#include <string>
#include <utility>
#include <vector>

namespace halide_lars {
namespace demo {

struct Series {
  std::string name;
  std::vector<double> y;
  unsigned rgb;  // 0xRRGGBB
};

// Plots the series (x = index) on a white canvas with axes and a legend of colored boxes
// (names go in the console table); log10 y when `log_y`. Returns false on I/O failure.
bool WriteLinePlotPng(const std::string& path, const std::vector<Series>& series, int width,
                      int height, bool log_y);

}  // namespace demo
}  // namespace halide_lars

#endif  // HALIDE_LARS_EXAMPLES_PNG_H_
