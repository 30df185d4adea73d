#include "examples/png.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>

namespace halide_lars {
namespace demo {
namespace {

void Put32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void Chunk(std::string* png, const char* type, const std::string& data) {
  Put32(png, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  png->append(body);
  Put32(png, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(body.data()),
                                         body.size())));
}

struct Canvas {
  int w, h;
  std::vector<uint8_t> rgb;
  Canvas(int w_, int h_) : w(w_), h(h_), rgb(static_cast<size_t>(w_) * h_ * 3, 255) {}
  void Set(int x, int y, unsigned c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    uint8_t* p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
    p[0] = (c >> 16) & 0xff;
    p[1] = (c >> 8) & 0xff;
    p[2] = c & 0xff;
  }
  void Line(double x0, double y0, double x1, double y1, unsigned c) {
    const int steps = static_cast<int>(std::max(std::fabs(x1 - x0), std::fabs(y1 - y0))) + 1;
    for (int i = 0; i <= steps; ++i) {
      const double t = static_cast<double>(i) / steps;
      const int x = static_cast<int>(std::lround(x0 + t * (x1 - x0)));
      const int y = static_cast<int>(std::lround(y0 + t * (y1 - y0)));
      Set(x, y, c);
      Set(x, y + 1, c);  // 2 px thick
    }
  }
};

}  // namespace

bool WriteLinePlotPng(const std::string& path, const std::vector<Series>& series, int width,
                      int height, bool log_y) {
  Canvas cv(width, height);
  const int left = 50, right = 20, top = 20, bottom = 40;
  double lo = 1e300, hi = -1e300;
  size_t n = 1;
  auto tr = [&](double v) { return log_y ? std::log10(std::max(v, 1e-12)) : v; };
  for (const Series& s : series) {
    n = std::max(n, s.y.size());
    for (double v : s.y) {
      lo = std::min(lo, tr(v));
      hi = std::max(hi, tr(v));
    }
  }
  if (!(hi > lo)) hi = lo + 1;
  const double pw = width - left - right, ph = height - top - bottom;
  auto px = [&](double i) { return left + pw * i / std::max<double>(1, n - 1); };
  auto py = [&](double v) { return top + ph * (1.0 - (tr(v) - lo) / (hi - lo)); };
  // Axes and a light grid (5 horizontal lines).
  cv.Line(left, top, left, top + ph, 0x000000);
  cv.Line(left, top + ph, left + pw, top + ph, 0x000000);
  for (int k = 1; k < 5; ++k) cv.Line(left, top + ph * k / 5, left + pw, top + ph * k / 5, 0xdddddd);
  for (const Series& s : series) {
    for (size_t i = 1; i < s.y.size(); ++i) cv.Line(px(i - 1), py(s.y[i - 1]), px(i), py(s.y[i]), s.rgb);
  }
  // Legend: one colored box per series, top right, in series order.
  for (size_t k = 0; k < series.size(); ++k) {
    for (int dy = 0; dy < 10; ++dy) {
      for (int dx = 0; dx < 24; ++dx) cv.Set(width - right - 30 + dx, top + 8 + 16 * static_cast<int>(k) + dy, series[k].rgb);
    }
  }
  // PNG: 8-bit RGB, filter 0 per row, one IDAT.
  std::string raw;
  raw.reserve((static_cast<size_t>(width) * 3 + 1) * height);
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.append(reinterpret_cast<const char*>(&cv.rgb[static_cast<size_t>(y) * width * 3]), width * 3);
  }
  uLongf zlen = compressBound(raw.size());
  std::string z(zlen, '\0');
  if (compress2(reinterpret_cast<Bytef*>(&z[0]), &zlen, reinterpret_cast<const Bytef*>(raw.data()),
                raw.size(), 6) != Z_OK) {
    return false;
  }
  z.resize(zlen);
  std::string png("\x89PNG\r\n\x1a\n", 8), ihdr;
  Put32(&ihdr, width);
  Put32(&ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  Chunk(&png, "IHDR", ihdr);
  Chunk(&png, "IDAT", z);
  Chunk(&png, "IEND", "");
  std::ofstream f(path, std::ios::binary);
  f.write(png.data(), static_cast<std::streamsize>(png.size()));
  return static_cast<bool>(f);
}

}  // namespace demo
}  // namespace halide_lars
