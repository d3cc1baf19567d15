// configs/experiments/table1.yaml runs UNCHANGED through `goca-bench run` on structure-complete tiny checkpoints of
// SD1.5, SDXL, PixArt-Sigma and Flux and on `datasets make-fixture` folders of all five layouts, in both protocols,
// with only `--set` overrides (dataset roots, images and captions, weights, `limit`, and the image size: 64 instead
// of the paper's 512/1024, see e2e_util.h). Every method preset of configs/methods/<backbone>/ then goes through
// `capture --method` (all of the run's variants at once, as the run captures) + `segment --method` on the run's
// first VOC image, and its score maps evaluate to exactly the run's
// journalled confusion matrices at every background threshold. table1-sd15.yaml and ablations-sd15.yaml (and
// table1.yaml again, sharded) run in test_readme.cpp, through the README's recipe.
#include "../baselines/preset_checks.h"
#include "e2e_util.h"

#include "baselines/method_yaml.h"
#include "baselines/plan_segmentor.h"
#include "datasets/dataset.h"
#include "harness/backbones/registry.h"
#include "harness/eval/evaluator.h"
#include "harness/io/safetensors.h"
#include "harness/runner/integration.h"
#include "harness/runner/journal.h"

#include <set>

namespace {

using namespace gb::e2e;

// table1.yaml once per process (paper protocol, 1 image per dataset), shared by the tests that read it.
// (table1-sd15.yaml and ablations-sd15.yaml, and table1.yaml on 2 images per dataset, run in test_readme.cpp.)
const gb::reports::Results& table1_paper() {
  static const gb::reports::Results r =
      run_config("configs/experiments/table1.yaml", world_sets(backbone_kinds(), 1), work_dir() / "table1-paper");
  return r;
}

// Cells per (dataset, backbone, variant), with images evaluated and a finite selected mIoU.
void expect_every_cell(const gb::reports::Results& r, const std::map<std::string, std::vector<std::string>>& variants,
                       int64_t images_per_dataset) {
  size_t want = 0;
  for (const auto& slot : dataset_slots())
    for (const auto& [backbone, names] : variants)
      for (const auto& v : names) {
        ++want;
        const auto* cell = r.find(slot.name, backbone, v);
        ASSERT_NE(cell, nullptr) << slot.name << "|" << backbone << "|" << v;
        EXPECT_EQ(cell->images, images_per_dataset) << cell->key();
        ASSERT_NE(cell->selected(), nullptr) << cell->key();
        EXPECT_GT(cell->selected()->confusion.total(), 0) << cell->key();
      }
  EXPECT_EQ(r.cells.size(), want);
}

const std::map<std::string, std::vector<std::string>> kTable1Variants = {
    {"sd15", {"Vanilla", "Baseline", "FTTM", "GoCA"}},
    {"sdxl", {"Vanilla", "GoCA"}},
    {"pixart-sigma", {"Vanilla", "GoCA"}},
    {"flux", {"Vanilla", "GoCA"}}};

TEST(TinyCheckpoints, EveryLayerOfEveryPresetExists) {
  for (const auto& kind : backbone_kinds()) {
    gb::bb::BackboneOptions o;
    o.image_size = kImageSize;
    const auto bb = gb::bb::open_backbone(world().weights.at(kind), o, kind);
    std::set<std::string> have;
    for (const auto& l : bb->list_layers()) have.insert(l.name);
    EXPECT_GE(gb::test::expect_presets_capture_only(kind, have), 2) << kind;
    EXPECT_EQ(bb->tokenizer().max_length(), kind == "pixart-sigma" ? 300 : kind == "flux" ? 512 : 77) << kind;
  }
}

// The *Long suites run in `make test-long` (CTest label `long`), not in `make test`.
TEST(PaperConfigsLong, Table1EveryBackboneEveryDatasetPaperProtocol) {
  const auto& r = table1_paper();
  expect_every_cell(r, kTable1Variants, 1);
  EXPECT_EQ(r.protocol, "paper");
  EXPECT_EQ(r.datasets.size(), 5u);
}

TEST(PaperConfigsLong, Table1StandardProtocol) {
  const auto r = run_config("configs/experiments/table1.yaml", world_sets(backbone_kinds(), 1, "standard"),
                            work_dir() / "table1-standard");
  expect_every_cell(r, kTable1Variants, 1);
  EXPECT_EQ(r.protocol, "standard");
}

// The evaluation the runner does for one image (harness/runner/runner.cpp), from a score-map file.
std::vector<std::vector<std::array<int64_t, 3>>> sparse_confusions(const gb::datasets::DatasetConfig& dc,
                                                                   const gb::datasets::Dataset& ds,
                                                                   const at::Tensor& scores,
                                                                   const std::vector<int64_t>& present,
                                                                   const at::Tensor& label) {
  gb::eval::EvalConfig ec;
  ec.protocol = dc.protocol == gb::datasets::Protocol::paper ? gb::eval::Protocol::paper : gb::eval::Protocol::standard;
  ec.num_classes = ds.classes().num_classes();
  ec.ignore_index = dc.ignore_index < 0 ? 255 : dc.ignore_index;
  ec.method = gb::eval::parse_background_method(dc.background_method);
  if (!dc.background_thresholds.empty()) ec.thresholds = dc.background_thresholds;
  gb::eval::SweepEvaluator ev(ec);
  ev.add_image(scores, present, label);
  std::vector<std::vector<std::array<int64_t, 3>>> out;
  for (const auto& cm : ev.matrices()) {
    const at::Tensor c = cm.counts();
    const at::Tensor nz = at::nonzero(c);
    std::vector<std::array<int64_t, 3>> sp;
    for (int64_t z = 0; z < nz.size(0); ++z) {
      const int64_t i = nz[z][0].item<int64_t>(), j = nz[z][1].item<int64_t>();
      sp.push_back({i, j, c[i][j].item<int64_t>()});
    }
    out.push_back(sp);
  }
  return out;
}

TEST(PaperConfigsLong, EveryPresetRunEqualsCaptureThenSegment) {
  const auto& r = table1_paper();
  ASSERT_FALSE(r.cells.empty());
  const World& w = world();
  const auto dc = voc_fixture_config(w, 1);
  const auto ds = gb::datasets::Dataset::open(dc);
  const size_t index = 0;  // the first image of the run
  const auto sample = ds->load(index);
  ASSERT_TRUE(sample.has_value());
  // `capture` and `run` seed the noise with the same image id (the file name, gb::image_id_of): the dataset's
  // own image file goes to capture.
  const fs::path dir = work_dir() / "capture-segment";
  fs::create_directories(dir);
  const fs::path image = sample->image_path;
  std::vector<int64_t> present;

  for (const auto& kind : backbone_kinds()) {
    // The run's journal of (VOC, kind): one record per image, one entry per variant in config order.
    std::ifstream jin(work_dir() / "table1-paper" / "journal" / ("VOC__" + kind + ".jsonl"));
    ASSERT_TRUE(jin.good()) << kind;
    nlohmann::json record;
    int64_t line_no = 0;
    for (std::string line; std::getline(jin, line);) {
      if (++line_no == 1) continue;  // the header
      const auto j = gb::runner::Journal::decode_line(line, "journal", line_no);
      if (j.at("i").get<int64_t>() == static_cast<int64_t>(index)) record = j;
    }
    ASSERT_FALSE(record.is_null()) << kind;
    ASSERT_EQ(record.at("id").get<std::string>(), sample->id);

    gb::bb::BackboneOptions o;
    o.image_size = kImageSize;
    const auto bb = gb::bb::open_backbone(w.weights.at(kind), o, kind);
    const auto builder = gb::runner::make_prompt_builder(dc, ds->classes(), bb->tokenizer());
    const auto prompt = gb::runner::build_prompt(*builder, *sample, ds->captions()->caption(sample->id), dc);
    const fs::path tokens = dir / (kind + "-tokens.json");
    prompt.groups.save(tokens.string());
    present.clear();
    for (const auto& obj : prompt.groups.objects) present.push_back(obj.class_id);

    const auto& names = kTable1Variants.at(kind);
    ASSERT_EQ(record.at("v").size(), names.size()) << kind;
    auto preset_of = [](std::string name) {
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return name;
    };
    // One capture for the run's variants, `capture --method A --method B ...`: what the run captured for them in its
    // one forward pass. Which layers are captured decides which attentions run on the explicit path (scores,
    // softmax, maps x values) and which on the fused kernel, so a capture of one method's layers alone differs
    // from the run's by float rounding (docs/runner.md); with the same capture, segment gives the run's matrices.
    const fs::path cap = dir / (kind + "-capture.safetensors");
    std::vector<std::string> cargs = {"capture",
                                      "--weights",
                                      w.weights.at(kind),
                                      "--image",
                                      image.string(),
                                      "--prompt",
                                      prompt.text,
                                      "--image-size",
                                      std::to_string(kImageSize),
                                      "--seed",
                                      "0",
                                      "--out",
                                      cap.string()};
    for (const auto& name : names)
      cargs.insert(cargs.end(), {"--method", "configs/methods/" + kind + "/" + preset_of(name) + ".yaml"});
    const auto c = cli(cargs);
    ASSERT_EQ(c.code, 0) << kind << ": " << c.out;
    std::set<std::string> presets_seen;
    for (size_t v = 0; v < names.size(); ++v) {
      const std::string preset = preset_of(names[v]);
      const std::string method = "configs/methods/" + kind + "/" + preset + ".yaml";
      presets_seen.insert(preset + ".yaml");
      const fs::path seg = dir / (kind + "-" + preset + "-segment.safetensors");
      std::vector<std::string> sargs = {"segment",  "--capture", cap.string(), "--tokens",  tokens.string(),
                                        "--method", method,      "--out",      seg.string()};
      if (preset == "fttm") sargs.insert(sargs.end(), {"--image", image.string()});
      auto s = cli(sargs);
      ASSERT_EQ(s.code, 0) << kind << " " << preset << ": " << s.out;
      const auto out = gb::load_safetensors(seg.string());
      const at::Tensor scores = out.count("crf") ? out.at("crf") : out.at("scores");
      const auto got = sparse_confusions(dc, *ds, scores, present, sample->label);
      const auto& want = record["v"][v]["t"];
      ASSERT_EQ(got.size(), want.size()) << kind << " " << preset;
      for (size_t t = 0; t < got.size(); ++t) {
        std::vector<std::array<int64_t, 3>> w3;
        for (const auto& e : want[t]) w3.push_back({e[0].get<int64_t>(), e[1].get<int64_t>(), e[2].get<int64_t>()});
        EXPECT_EQ(got[t], w3) << kind << " " << preset << " threshold " << t;
      }
    }
    // Every segmentation preset file of the backbone was compared (scfg.yaml is S-CFG's mask method for
    // generation, tested in tests/generation).
    std::set<std::string> files;
    for (const auto& e : fs::directory_iterator(fs::path(GB_SOURCE_DIR) / "configs/methods" / kind))
      if (e.path().filename() != "scfg.yaml") files.insert(e.path().filename().string());
    EXPECT_EQ(presets_seen, files) << kind;
  }
}

}  // namespace
