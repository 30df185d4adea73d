#include "generators/contracts.h"

#include <map>
#include <string>

namespace halide_lars {
namespace generators {

using namespace Halide;

float TypicalScalar(const std::string& name) {
  static const auto* typical = new std::map<std::string, float>{
      {"lr", 0.1f},          {"momentum", 0.9f},          {"weight_decay", 1e-4f},
      {"max_unorm", 0.02f},  {"trust_coefficient", 1e-3f}, {"eps", 1e-8f}};
  auto it = typical->find(name);
  return it == typical->end() ? 0.0f : it->second;
}

}  // namespace generators
}  // namespace halide_lars
