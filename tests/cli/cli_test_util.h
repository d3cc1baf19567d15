#pragma once
// Runs the real goca-bench binary (GB_CLI_BINARY) so exit codes and stdout/stderr are what a user sees.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace gb::test {

struct CliResult {
  int code;
  std::string out;  // stdout and stderr together
};

inline CliResult run_goca_bench(const std::string& args) {
  std::string cmd = std::string(GB_CLI_BINARY) + " " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
  int status = pclose(pipe.release());
  return {WEXITSTATUS(status), out};
}

}  // namespace gb::test
