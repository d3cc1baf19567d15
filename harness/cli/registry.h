#pragma once
// Subcommands register themselves: a file harness/cli/cmd_<name>.cpp defines
//   static void add(CLI::App& app) { auto* sub = app.add_subcommand("name", "help"); ... sub->callback(...); }
//   GB_REGISTER_COMMAND(add);
// and needs no edit anywhere else. Callbacks throw gb::UserError for bad input (exit 2).
#include <functional>
#include <vector>

namespace CLI {
class App;
}

namespace gb::cli {

using AddCommand = std::function<void(CLI::App&)>;

struct CommandRegistrar {
  explicit CommandRegistrar(AddCommand add);
};

const std::vector<AddCommand>& registered_commands();

// Runs the CLI in-process and returns the exit code (0 ok, 1 internal error, 2 user error).
int run(int argc, const char* const* argv);

}  // namespace gb::cli

#define GB_CLI_CONCAT2(a, b) a##b
#define GB_CLI_CONCAT(a, b) GB_CLI_CONCAT2(a, b)
#define GB_REGISTER_COMMAND(fn) static ::gb::cli::CommandRegistrar GB_CLI_CONCAT(gb_cli_registrar_, __LINE__)(fn)
