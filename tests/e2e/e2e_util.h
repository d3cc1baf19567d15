#pragma once
// The world of the end-to-end suite, written once per process under $TMPDIR/gb_e2e: structure-complete tiny
// checkpoints of the four paper backbones (tests/backbones/tiny_checkpoints.h) and the five dataset layouts as
// `goca-bench datasets make-fixture` writes them; plus the `--set` overrides that point the shipped
// configs/experiments/*.yaml at them, and helpers to run the CLI in-process from the repository root.
#include "../backbones/tiny_checkpoints.h"
#include "../cli/cli_test_util.h"

#include "harness/runner/integration.h"
#include "reports/results.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace gb::e2e {

namespace fs = std::filesystem;

inline fs::path work_dir() { return fs::temp_directory_path() / "gb_e2e"; }

// The image size the suite captures at (the paper's 512/1024 are too slow on 2 CPU cores): 64 is the smallest that
// keeps every captured layer of SD1.5 (latent 8 -> 1x1 at the UNet's deepest level), used for all four backbones.
inline constexpr int64_t kImageSize = gb::bb::tiny::kTinyImageSize;

// The backbones of configs/experiments/table1.yaml, in its order (name = kind).
inline const std::vector<std::string>& backbone_kinds() {
  static const std::vector<std::string> k = {"sd15", "sdxl", "pixart-sigma", "flux"};
  return k;
}

// The datasets of configs/experiments/_paper_base.yaml, in its order: (entry name, make-fixture layout, config stem).
struct DatasetSlot {
  std::string name, layout, config;
};
inline const std::vector<DatasetSlot>& dataset_slots() {
  static const std::vector<DatasetSlot> d = {{"VOC", "voc", "voc"},
                                             {"Context", "context", "context"},
                                             {"COCO-Object", "coco-object", "coco-object"},
                                             {"Cityscapes", "cityscapes", "cityscapes"},
                                             {"ADE20K", "ade20k", "ade20k"}};
  return d;
}

struct FixtureData {
  std::string root, images, captions;
  std::vector<std::string> paper_ids, standard_ids;
};

struct World {
  std::map<std::string, std::string> weights;  // backbone kind -> checkpoint folder
  std::map<std::string, FixtureData> data;     // make-fixture layout -> its paths
};

// The VOC fixture's dataset config as a run reads it (configs/datasets/voc.yaml, root and captions pointed at the
// fixture), its first `limit` images.
inline gb::datasets::DatasetConfig voc_fixture_config(const World& w, int limit) {
  const FixtureData& voc = w.data.at("voc");
  gb::runner::DatasetEntry de;
  de.name = "VOC";
  de.config_path = (fs::path(GB_SOURCE_DIR) / "configs/datasets/voc.yaml").string();
  de.overrides = {"root=" + voc.root, "captions=" + voc.captions, "limit=" + std::to_string(limit)};
  return gb::runner::load_dataset_entry(de);
}

// Runs from the repository root (the shipped configs name configs/... relative to it), restores the cwd after.
struct InRepoRoot {
  fs::path saved = fs::current_path();
  InRepoRoot() { fs::current_path(GB_SOURCE_DIR); }
  ~InRepoRoot() { fs::current_path(saved); }
};

inline gb::test::CliResult cli(const std::vector<std::string>& args) {
  InRepoRoot here;
  return gb::test::run_goca_bench_in_process(args);
}

// Written on first use; later calls return the same world.
inline const World& world() {
  static const World w = [] {
    World out;
    const fs::path dir = work_dir() / "world";
    fs::remove_all(dir);
    for (const auto& kind : backbone_kinds())
      out.weights[kind] = gb::bb::tiny::write_structural_checkpoint(kind, dir / "models" / kind);
    for (const auto& slot : dataset_slots()) {
      const auto r = gb::test::run_goca_bench_in_process(
          {"datasets", "make-fixture", "--dataset", slot.layout, "--out", (dir / "data" / slot.layout).string()},
          /*with_stderr=*/false);
      if (r.code != 0) throw std::runtime_error("make-fixture " + slot.layout + " failed: " + r.out);
      const auto j = nlohmann::json::parse(r.out);
      FixtureData f;
      f.root = j.at("root");
      f.images = j.at("images");
      f.captions = j.at("captions");
      f.paper_ids = j.at("paper_ids").get<std::vector<std::string>>();
      f.standard_ids = j.at("standard_ids").get<std::vector<std::string>>();
      out.data[slot.layout] = f;
    }
    return out;
  }();
  return w;
}

// The `--set` overrides that point a shipped experiment at the world: every dataset's root, images (Context) and
// caption file, a reduced image count (`limit`), and for the standard protocol the `-standard` dataset configs;
// every backbone's weights and the suite's image size. `backbones`: the config's backbone names, in order.
inline std::vector<std::string> world_sets(const std::vector<std::string>& backbones, int64_t limit,
                                           const std::string& protocol = "paper") {
  const World& w = world();
  std::vector<std::string> a;
  auto set = [&](const std::string& kv) {
    a.push_back("--set");
    a.push_back(kv);
  };
  for (size_t i = 0; i < dataset_slots().size(); ++i) {
    const auto& slot = dataset_slots()[i];
    const auto& f = w.data.at(slot.layout);
    const std::string p = "datasets." + std::to_string(i) + ".";
    if (protocol == "standard") set(p + "config=configs/datasets/" + slot.config + "-standard.yaml");
    set(p + "set.root=" + f.root);
    if (!f.images.empty()) set(p + "set.images=" + f.images);
    set(p + "set.captions=" + f.captions);
    // Context's paper list (train, reversed) starts with an id without a label file, which the paper drops after
    // the limit (make-fixture writes that case): one more keeps `limit` images.
    set(p + "set.limit=" + std::to_string(slot.layout == "context" && protocol == "paper" ? limit + 1 : limit));
  }
  for (size_t j = 0; j < backbones.size(); ++j) {
    const std::string p = "backbones." + std::to_string(j) + ".";
    set(p + "weights=" + w.weights.at(backbones[j]));
    set(p + "options.image_size=" + std::to_string(kImageSize));
  }
  return a;
}

// `goca-bench run CONFIG <sets> --out DIR --no-progress [extra]` in-process, or with `one_omp_thread_binary` the
// real binary from the repository root with one OpenMP thread (gb::test::run_binary_in_repo); returns the results.
inline gb::reports::Results run_config(const std::string& config, const std::vector<std::string>& sets,
                                       const fs::path& out, const std::vector<std::string>& extra = {},
                                       bool one_omp_thread_binary = false) {
  std::vector<std::string> args = {"run", config};
  args.insert(args.end(), sets.begin(), sets.end());
  args.insert(args.end(), {"--out", out.string(), "--no-progress"});
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = one_omp_thread_binary ? gb::test::run_binary_in_repo(args, true) : cli(args);
  if (r.code != 0) {
    ADD_FAILURE() << "goca-bench run " << config << " exited " << r.code << ":\n" << r.out;
    return {};
  }
  return gb::reports::load_results((out / "results.json").string());
}

// Every confusion matrix of `a` equals `b`'s, cell by cell (same cells, same image counts).
inline void expect_same_confusions(const gb::reports::Results& a, const gb::reports::Results& b) {
  ASSERT_EQ(a.cells.size(), b.cells.size());
  for (size_t k = 0; k < a.cells.size(); ++k) {
    ASSERT_EQ(a.cells[k].key(), b.cells[k].key());
    EXPECT_EQ(a.cells[k].images, b.cells[k].images) << a.cells[k].key();
    ASSERT_EQ(a.cells[k].thresholds.size(), b.cells[k].thresholds.size());
    for (size_t t = 0; t < a.cells[k].thresholds.size(); ++t)
      EXPECT_EQ(a.cells[k].thresholds[t].confusion, b.cells[k].thresholds[t].confusion) << a.cells[k].key();
  }
  EXPECT_EQ(a.config_hash, b.config_hash);
}

}  // namespace gb::e2e
