// libFuzzer target: the cluster file loader (config::load_text) on arbitrary bytes. Every input must
// end in a Cluster or a positioned config error: no crash, no hang, no sanitizer report.
#include "config/load.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto cluster = mlplat::config::load_text(text, "fuzz.yaml");
  if (!cluster) {
    (void)cluster.error().render();
  }
  return 0;
}
