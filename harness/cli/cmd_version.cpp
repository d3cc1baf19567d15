// `goca-bench version`: version, git commit, LibTorch version, CUDA availability and device names.
#include "gb_build_info.h"
#include "harness/cli/registry.h"
#include "harness/core/torch_compat.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace {

void add(CLI::App& app) {
  auto* sub = app.add_subcommand("version", "Print version, git commit, LibTorch version and CUDA devices");
  auto* as_json = sub->add_flag("--json", "Print one JSON object instead of text");
  sub->callback([as_json] {
    nlohmann::json j;
    j["version"] = GB_VERSION;
    j["git_commit"] = GB_GIT_COMMIT;
    j["build_type"] = GB_BUILD_TYPE;
    j["libtorch"] = gb::compat::torch_version();
    j["cuda_compiled"] = gb::compat::cuda_compiled();
    j["cuda_version"] = gb::compat::cuda_version();
    j["cuda_available"] = gb::compat::cuda_available();
    std::vector<std::string> devices;
    for (int i = 0; i < gb::compat::cuda_device_count(); ++i) devices.push_back(gb::compat::cuda_device_name(i));
    j["cuda_devices"] = static_cast<int64_t>(devices.size());
    j["cuda_device_names"] = devices;
    if (*as_json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "goca-bench " << GB_VERSION << "\n"
              << "git commit: " << GB_GIT_COMMIT << "\n"
              << "build: " << GB_BUILD_TYPE << "\n"
              << "LibTorch: " << gb::compat::torch_version() << "\n"
              << "CUDA: "
              << (gb::compat::cuda_compiled() ? "compiled in (" + gb::compat::cuda_version() + ")" : "not compiled in")
              << ", " << (gb::compat::cuda_available() ? "available" : "no device") << "\n";
    for (size_t i = 0; i < devices.size(); ++i) std::cout << "  cuda:" << i << " " << devices[i] << "\n";
  });
}

GB_REGISTER_COMMAND(add);

}  // namespace
