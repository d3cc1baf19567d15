#include "harness/text/joint_tokenizer.h"

#include "harness/core/errors.h"

namespace gb::text {

JointTokenizer::JointTokenizer(std::vector<std::shared_ptr<const TextTokenizer>> parts) : parts_(std::move(parts)) {
  if (parts_.size() < 2) fail("a joint tokenizer needs at least two tokenizers, got {}", parts_.size());
  for (const auto& p : parts_)
    if (!p) fail("a joint tokenizer was given a missing tokenizer");
}

std::string JointTokenizer::name() const {
  std::string n;
  for (const auto& p : parts_) n += (n.empty() ? "" : "+") + p->name();
  return n;
}

int64_t JointTokenizer::max_length() const {
  int64_t n = 0;
  for (const auto& p : parts_) n += p->max_length();
  return n;
}

std::vector<TextToken> JointTokenizer::encode(const std::string& text) const {
  std::vector<TextToken> out;
  for (const auto& p : parts_) {
    auto part = p->encode(text);
    if (static_cast<int64_t>(part.size()) != p->max_length())
      throw std::logic_error(p->name() + " tokenizer returned " + std::to_string(part.size()) + " tokens, not its " +
                             std::to_string(p->max_length()));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace gb::text
