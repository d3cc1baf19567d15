#pragma once
// profile.json / profile.md: time per stage (decode, prompt, text encoding, VAE, denoiser, aggregation,
// evaluation), images per second and peak memory, per (dataset, backbone), from results.json.
#include "reports/results.h"

#include <nlohmann/json.hpp>

#include <string>

namespace gb::reports {

nlohmann::json profile_json(const Results& r);
std::string profile_markdown(const Results& r);
void write_profile(const Results& r, const std::string& run_dir);

}  // namespace gb::reports
