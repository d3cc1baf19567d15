#pragma once
// Runs the real goca-bench binary (GB_CLI_BINARY) so exit codes and stdout/stderr are what a user sees, or the
// same CLI in-process (gb::cli::run; process start-up costs about a second here).
#include "harness/cli/registry.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

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

// gb::cli::run in this process with stdout and stderr captured at the file-descriptor level, so what a user would
// see (including the one-line error) is what the test sees. `args` are the words after `goca-bench` (no shell
// quoting: a word may hold spaces). `with_stderr` = false keeps only stdout.
inline CliResult run_goca_bench_in_process(const std::vector<std::string>& args, bool with_stderr = true) {
  std::vector<const char*> argv = {"goca-bench"};
  for (const auto& w : args) argv.push_back(w.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  std::cout.flush();
  FILE* out_file = std::tmpfile();
  FILE* err_file = std::tmpfile();
  const int saved_out = dup(1), saved_err = dup(2);
  dup2(fileno(out_file), 1);
  dup2(fileno(err_file), 2);
  const int code = gb::cli::run(static_cast<int>(argv.size()), argv.data());
  std::cout.flush();
  std::cerr.flush();
  std::fflush(stdout);
  std::fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  auto slurp = [](FILE* f) {
    std::string s;
    std::rewind(f);
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) s.append(buf.data(), n);
    std::fclose(f);
    return s;
  };
  std::string out = slurp(out_file);
  std::string err = slurp(err_file);
  return {code, with_stderr ? out + err : out};
}

// The same with `args` split on whitespace.
inline CliResult run_goca_bench_in_process(const std::string& args, bool with_stderr = true) {
  std::vector<std::string> words;
  std::istringstream in(args);
  for (std::string w; in >> w;) words.push_back(w);
  return run_goca_bench_in_process(words, with_stderr);
}

}  // namespace gb::test
