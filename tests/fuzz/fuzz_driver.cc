// A driver for libFuzzer-style targets (LLVMFuzzerTestOneInput) that runs in the normal gcc
// build and test suite: every seed of a corpus directory, then deterministic random mutations of
// them (bit flips, truncations, splices, random bytes) for a bounded time. With clang, the same
// targets link against libFuzzer instead for coverage-guided long runs (tests/fuzz/README.md).
//   fuzz_driver CORPUS_DIR [seconds=10] [seed=1]
#include <chrono>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> ReadCorpus(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + e->d_name, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    out.push_back(ss.str());
  }
  closedir(d);
  return out;
}

std::string Mutate(std::string s, std::mt19937_64& rng, const std::vector<std::string>& corpus) {
  const int ops = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < ops; ++i) {
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng() % s.size()] ^= static_cast<char>(1 << (rng() % 8));
        break;
      case 1:  // truncate
        if (!s.empty()) s.resize(rng() % s.size());
        break;
      case 2:  // overwrite a byte with an interesting value
        if (!s.empty()) {
          static const uint8_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff, 0xfe};
          s[rng() % s.size()] = static_cast<char>(kInteresting[rng() % 6]);
        }
        break;
      case 3: {  // insert random bytes
        std::string r(rng() % 16, '\0');
        for (char& c : r) c = static_cast<char>(rng());
        s.insert(s.empty() ? 0 : rng() % s.size(), r);
        break;
      }
      case 4:  // splice with another seed
        if (!corpus.empty()) {
          const std::string& o = corpus[rng() % corpus.size()];
          if (!o.empty() && !s.empty()) s = s.substr(0, rng() % s.size()) + o.substr(rng() % o.size());
        }
        break;
      default: {  // overwrite 4 bytes (e.g. a length field)
        if (s.size() >= 4) {
          const size_t at = rng() % (s.size() - 3);
          const uint32_t v = static_cast<uint32_t>(rng());
          std::memcpy(&s[at], &v, 4);
        }
      }
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [seconds] [seed]\n", argv[0]);
    return 2;
  }
  const double seconds = argc > 2 ? std::atof(argv[2]) : 10.0;
  std::mt19937_64 rng(argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1);
  const std::vector<std::string> corpus = ReadCorpus(argv[1]);
  if (corpus.empty()) {
    std::fprintf(stderr, "empty corpus %s\n", argv[1]);
    return 1;
  }
  for (const std::string& s : corpus) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  const auto start = std::chrono::steady_clock::now();
  int64_t execs = corpus.size();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    const std::string input = Mutate(corpus[rng() % corpus.size()], rng, corpus);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    ++execs;
  }
  std::printf("%lld executions in %.0f s over %zu seeds: no crash, every invariant held\n",
              static_cast<long long>(execs), seconds, corpus.size());
  return 0;
}
