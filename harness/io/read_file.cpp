#include "harness/io/read_file.h"

#include "harness/core/errors.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gb {

std::string read_whole_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_file(path, "cannot open {}: {}", what, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail_file(path, "cannot read {}", what);
  return ss.str();
}

}  // namespace gb
