#pragma once
// The evaluation protocol, one enum for every component that depends on it (docs/evaluation.md):
//   paper     the paper's code: its class tables and prompts, void -> background, every pixel counted,
//             absent classes score 0;
//   standard  mmseg's: the standard class tables, the ignore index dropped, absent classes skipped (nanmean).
// Datasets (class tables, label mapping), prompts (harness/text), evaluation (harness/eval) and the reports'
// metric reduction all take this type.
#include <string>

namespace gb {

enum class Protocol { paper, standard };

const char* to_string(Protocol protocol);  // "paper", "standard"
// "paper" | "standard"; UserError "unknown protocol '<name>' (choices: paper, standard)" otherwise.
Protocol parse_protocol(const std::string& name);

}  // namespace gb
