#pragma once
// The backbone flags of `capture`, `memory` and `list-layers`, defined once: the same names, help texts and
// value parsers as the experiment YAML's backbone options (gb::bb::read_backbone_options), filling the same
// gb::bb::BackboneOptions. Also the one resolver of `--layers KEY…` (exact keys or '*' patterns).
#include "harness/backbones/factory.h"
#include "harness/backbones/memory_check.h"

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace gb::cli {

struct BackboneFlags {
  std::string device = "cpu", dtype, store_dtype, variant, text_encoder, t5_int8;
  int64_t image_size = 0, timestep = 0;
};

// Which flags a command offers (the options it can honour).
enum BackboneFlag : unsigned {
  kDevice = 1u << 0,
  kDtype = 1u << 1,
  kStoreDtype = 1u << 2,
  kImageSize = 1u << 3,
  kTimestep = 1u << 4,
  kVariant = 1u << 5,
  kTextEncoder = 1u << 6,
  kT5Int8 = 1u << 7,
  kAllBackboneFlags = 0xffu,
};

// `dtype_help` describes --dtype's default (a load on CPU/CUDA, or the plan's GPU dtype).
void add_backbone_flags(CLI::App* sub, BackboneFlags& flags, unsigned which, const std::string& dtype_help);
// The options the given flags set (UserError naming the flag for a bad value).
gb::bb::BackboneOptions backbone_options(const BackboneFlags& flags);

// --memory-budget-gb and --no-memory-check of the commands that pre-flight their memory (capture, run, generate).
struct MemoryCheckFlags {
  double budget_gb = 0;
  bool no_check = false;
};
void add_memory_check_flags(CLI::App* sub, MemoryCheckFlags& flags);
gb::bb::MemoryCheck memory_check(const MemoryCheckFlags& flags);

// Exact keys, or patterns with '*' matched against every capturable key (a pattern matching nothing is a
// UserError); unknown exact keys are left to the backbone or the planner (with the list-layers hint).
gb::CaptureSpec select_layers(const std::vector<std::string>& patterns, const std::vector<gb::LayerInfo>& layers);

}  // namespace gb::cli
