#include "harness/backbones/text_cache.h"

#include "harness/core/errors.h"
#include "harness/core/log.h"

#include <unordered_set>

namespace gb::bb {

void PromptConditioningCache::store(const std::vector<std::string>& prompts, const Rows& batch) {
  const int64_t b = static_cast<int64_t>(prompts.size());
  for (const auto& [name, t] : batch)
    if (!t.defined() || t.dim() == 0 || t.size(0) != b)
      throw std::logic_error(fmt::format("PromptConditioningCache: '{}' must be [{}, ...]", name, b));
  for (int64_t i = 0; i < b; ++i) {
    const std::string& p = prompts[static_cast<size_t>(i)];
    if (rows_.count(p)) continue;
    Rows r;
    for (const auto& [name, t] : batch) {
      at::Tensor row = t.select(0, i).to(at::kCPU).clone();  // own storage: the batch tensor is not kept alive
      bytes_ += static_cast<int64_t>(row.nbytes());
      r.emplace(name, std::move(row));
    }
    rows_.emplace(p, std::move(r));
  }
}

PromptConditioningCache::Rows PromptConditioningCache::gather(const std::vector<std::string>& prompts,
                                                              at::Device device, const std::string& who) const {
  if (prompts.empty()) throw std::logic_error("PromptConditioningCache::gather: no prompts");
  std::map<std::string, std::vector<at::Tensor>> parts;
  for (const auto& p : prompts) {
    auto it = rows_.find(p);
    if (it == rows_.end())
      fail(
          "{}: the text encoders were freed (text_encoder: free) but the prompt \"{}\" was not among the prompts "
          "encoded before (prepare_prompts); use text_encoder: keep or offload for ad-hoc prompts",
          who, p);
    for (const auto& [name, t] : it->second) parts[name].push_back(t);
  }
  Rows out;
  for (auto& [name, ts] : parts) out.emplace(name, at::stack(ts).to(device));
  return out;
}

std::vector<std::vector<std::string>> PromptConditioningCache::pending(const std::vector<std::string>& prompts,
                                                                       int64_t batch_size) const {
  if (batch_size < 1) throw std::logic_error("PromptConditioningCache::pending: batch_size < 1");
  std::vector<std::vector<std::string>> chunks;
  std::unordered_set<std::string> seen;
  for (const auto& p : prompts) {
    if (rows_.count(p) || !seen.insert(p).second) continue;
    if (chunks.empty() || static_cast<int64_t>(chunks.back().size()) == batch_size) chunks.emplace_back();
    chunks.back().push_back(p);
  }
  return chunks;
}

void PromptConditioningCache::fill(const std::vector<std::string>& prompts, int64_t batch_size, bool can_encode,
                                   const std::function<Rows(const std::vector<std::string>&)>& encode,
                                   const std::string& who) {
  const auto chunks = pending(prompts, batch_size);
  if (!can_encode) {
    if (!chunks.empty()) gather({chunks.front().front()}, at::kCPU, who);  // throws, naming the prompt
    return;
  }
  for (const auto& chunk : chunks) store(chunk, encode(chunk));
}

void PromptConditioningCache::prepare(const std::vector<std::string>& prompts, int64_t batch_size,
                                      TextEncoderResidency residency, const Encoders& encoders,
                                      const std::string& who) {
  if (residency != TextEncoderResidency::free) return;
  fill(prompts, batch_size, encoders.loaded, encoders.encode, who);
  if (!encoders.loaded) return;
  log::info("{}: encoded {} prompts ({:.1f} MiB of host memory); text encoders freed (text_encoder: free)", who, size(),
            bytes() / 1048576.0);
  encoders.release();
}

PromptConditioningCache::Rows PromptConditioningCache::conditioning(const std::vector<std::string>& prompts,
                                                                    at::Device device, TextEncoderResidency residency,
                                                                    const Encoders& encoders, const std::string& who) {
  if (!encoders.loaded) return gather(prompts, device, who);
  Rows rows = encoders.encode(prompts);
  if (residency == TextEncoderResidency::free) {
    store(prompts, rows);
    encoders.release();
  }
  return rows;
}

}  // namespace gb::bb
