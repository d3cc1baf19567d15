#include "harness/core/tokenizer.h"

#include <ATen/ATen.h>

namespace gb {

at::Tensor token_id_rows(const TextTokenizer& tok, const std::vector<std::string>& prompts) {
  std::vector<at::Tensor> rows;
  for (const auto& p : prompts) {
    std::vector<int64_t> ids;
    for (const auto& t : tok.encode(p)) ids.push_back(t.id);
    rows.push_back(at::tensor(ids, at::kLong));
  }
  return at::stack(rows);
}

}  // namespace gb
