#include "harness/cli/registry.h"

#include "harness/core/errors.h"
#include "harness/core/log.h"

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <cstdio>
#include <iostream>

namespace gb::cli {

namespace {
std::vector<AddCommand>& storage() {
  static std::vector<AddCommand> commands;
  return commands;
}
}  // namespace

CommandRegistrar::CommandRegistrar(AddCommand add) { storage().push_back(std::move(add)); }
const std::vector<AddCommand>& registered_commands() { return storage(); }

int run(int argc, const char* const* argv) {
  CLI::App app{"goca-bench: benchmark and evaluation harness for training-free diffusion segmentation (GoCA)"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand");
  std::string log_level;
  app.add_option("--log-level", log_level, "debug, info, warn, error or off (default: info, or $GB_LOG_LEVEL)");
  app.parse_complete_callback([&] {
    if (!log_level.empty()) log::set_level(log::parse_level(log_level));
  });
  for (const auto& add : registered_commands()) add(app);
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
      return app.exit(e);
    } catch (const CLI::ParseError& e) {
      // Usage errors are user errors: one line, exit 2.
      std::fprintf(stderr, "goca-bench: error: %s (see --help)\n", e.what());
      return kExitUser;
    }
  } catch (const UserError& e) {
    std::fprintf(stderr, "goca-bench: error: %s\n", e.what());
    return kExitUser;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "goca-bench: internal error (LibTorch): %s\n", e.what_without_backtrace());
    return kExitInternal;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "goca-bench: internal error: %s\n", e.what());
    return kExitInternal;
  }
  return kExitOk;
}

}  // namespace gb::cli
