// libFuzzer target: the compatibility matrix loader (compat::load_matrix) on arbitrary bytes. Every
// input must end in a Matrix or a positioned config error: no crash, no hang, no sanitizer report.
#include "compat/matrix.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto matrix = mlplat::compat::load_matrix(text, "fuzz-matrix.yaml");
  if (!matrix) {
    (void)matrix.error().render();
  }
  return 0;
}
