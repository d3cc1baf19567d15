#pragma once
// A whole file's bytes, for the readers that parse text formats (JSON, YAML, caption and prompt files, XML).
#include <string>

namespace gb {

// UserError naming the file when it cannot be opened ("cannot open <what>: <reason>") or read ("cannot read <what>").
std::string read_whole_file(const std::string& path, const std::string& what = "file");

}  // namespace gb
