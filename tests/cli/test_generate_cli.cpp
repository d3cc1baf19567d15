// `goca-bench generate` on a tiny SD1.5 folder (the parity checkpoint with a real-vocabulary CLIP text encoder and
// the CLIP tokenizer files): images do not depend on the batch size, on sharding or on --resume (exactly; up to one
// level with --batched-forward); --latents with the seeded noise reproduces the seeded run; bad inputs exit 2 with one
// line. SD3.5 from a prompt file on a structure-complete tiny folder (its CLIP and T5 tokenizers, the negative prompt
// "" through both).
#ifndef GB_CLI_BINARY
#define GB_CLI_BINARY "goca-bench"
#endif
#include "../backbones/tiny_checkpoints.h"
#include "../backbones/tiny_dit.h"
#include "../backbones/tiny_tokenizer_files.h"
#include "../cli/cli_test_util.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/generation/sampler.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kIds = {"000000", "000001", "000002", "000003"};

struct Fixture {
  fs::path dir = fs::temp_directory_path() / "gb_generate_cli";
  std::string weights, prompts;
  Fixture() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::copy(std::string(GB_SOURCE_DIR) + "/tests/generation/golden/sd15_tiny", dir / "sd15",
             fs::copy_options::recursive);
    fs::remove(dir / "sd15" / "golden.safetensors");
    fs::remove_all(dir / "sd15" / "text_encoder");
    gb::bb::tiny::write_clip_text(dir / "sd15" / "text_encoder", 5, 49408, 77);
    gb::bb::tiny::install_clip_vocab_merges(dir / "sd15");
    weights = (dir / "sd15").string();
    prompts = (dir / "p.txt").string();
    std::ofstream(prompts) << "a red cat\na dog on a sofa\ntwo birds\nan empty street at night\n";
  }
  ~Fixture() { fs::remove_all(dir); }
  gb::test::CliResult gen(const std::string& out, const std::string& extra) const {
    return gb::test::run_goca_bench_in_process("generate --weights " + weights + " --prompts " + prompts + " --out " +
                                               (dir / out).string() + " --steps 3 --no-progress " + extra);
  }
  at::Tensor image(const std::string& out, const std::string& id) const {
    return gb::read_image_rgb((dir / out / (id + ".png")).string());
  }
};

// The noise of a prompt never depends on the batch, shard or resume, and the prompts of a batch are sampled one at a
// time: the images are identical.
void expect_same(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(at::equal(a, b)) << what << ": " << (a.to(at::kInt) - b.to(at::kInt)).abs().max().item<int>()
                               << " levels apart";
}

// --batched-forward: the batched denoiser's kernels may reduce in another order for another batch size, which moves
// a rare value by one level (seen: 1 of 768 values): at most one level anywhere and on at most 0.1 % of the values.
void expect_close(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  auto d = (a.to(at::kInt) - b.to(at::kInt)).abs();
  EXPECT_LE(d.max().item<int>(), 1) << what;
  EXPECT_LE(d.gt(0).to(at::kDouble).mean().item<double>(), 0.001 + 1.0 / static_cast<double>(d.numel())) << what;
}

const Fixture& fx() {
  static Fixture f;
  return f;
}

TEST(GenerateCli, SameImagesForEveryBatchSizeShardAndResume) {
  const auto& f = fx();
  auto r = f.gen("b1", "--batch-size 1");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const auto& id : kIds) ASSERT_TRUE(fs::is_regular_file(f.dir / "b1" / (id + ".png"))) << id;
  ASSERT_EQ(f.image("b1", "000000").sizes(), (std::vector<int64_t>{16, 16, 3}));
  EXPECT_FALSE(at::equal(f.image("b1", "000000"), f.image("b1", "000001")));
  for (const std::string b : {"2", "3"}) {
    r = f.gen("b" + b, "--batch-size " + b);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const auto& id : kIds) expect_same(f.image("b1", id), f.image("b" + b, id), "batch " + b + " " + id);
  }
  r = f.gen("b3-batched", "--batch-size 3 --batched-forward");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const auto& id : kIds) expect_close(f.image("b1", id), f.image("b3-batched", id), "batched forward " + id);
  // Two shards into one folder, then --resume after losing one image: only that one is redone.
  ASSERT_EQ(f.gen("sh", "--batch-size 2 --shard 0/2").code, 0);
  EXPECT_FALSE(fs::exists(f.dir / "sh" / "000001.png"));
  ASSERT_EQ(f.gen("sh", "--batch-size 2 --shard 1/2").code, 0);
  fs::remove(f.dir / "sh" / "000002.png");
  r = f.gen("sh", "--batch-size 3 --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const auto& id : kIds) expect_same(f.image("b1", id), f.image("sh", id), "shard/resume " + id);
  nlohmann::json j;
  std::ifstream(f.dir / "sh" / "generate.json") >> j;
  EXPECT_EQ(j["counts"]["skipped_existing"], 3);
  EXPECT_EQ(j["counts"]["generated"], 1);
  EXPECT_EQ(j["settings"]["scheduler"], "PNDMScheduler");
  EXPECT_EQ(j["settings"]["guidance_scale"], 2.0);
  EXPECT_EQ(j["settings"]["seed"], 42);
  EXPECT_TRUE(j["stage_seconds"].contains("denoiser"));
  for (const auto& e : fs::directory_iterator(f.dir / "sh"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(GenerateCli, LatentsFileReplacesTheSeededNoise) {
  const auto& f = fx();
  ASSERT_EQ(f.gen("ref", "--limit 2").code, 0);
  std::vector<at::Tensor> rows;
  for (const std::string id : {"000000", "000001"}) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(gb::bb::noise_seed(42, id));
    rows.push_back(at::randn({4, 8, 8}, gen, at::TensorOptions().dtype(at::kFloat)));
  }
  const std::string lat = (f.dir / "lat.safetensors").string();
  gb::save_safetensors(lat, {{"latents", at::stack(rows)}});
  auto r = f.gen("lat", "--limit 2 --seed 7 --latents " + lat);
  ASSERT_EQ(r.code, 0) << r.out;
  for (const std::string id : {"000000", "000001"})
    EXPECT_TRUE(at::equal(f.image("ref", id), f.image("lat", id))) << id;
  ASSERT_EQ(f.gen("seed7", "--limit 1 --seed 7").code, 0);
  EXPECT_FALSE(at::equal(f.image("ref", "000000"), f.image("seed7", "000000")));
}

TEST(GenerateCli, BadInputsExitTwoWithOneLine) {
  const auto& f = fx();
  const std::string wrong_shape = (f.dir / "wrong_shape.safetensors").string();
  gb::save_safetensors(wrong_shape, {{"latents", at::zeros({4, 4, 6, 6})}});
  const std::string wrong_count = (f.dir / "wrong_count.safetensors").string();
  gb::save_safetensors(wrong_count, {{"latents", at::zeros({3, 4, 8, 8})}});
  const std::string csv = (f.dir / "nocols.csv").string();
  std::ofstream(csv) << "name,words\n1,a cat\n";
  const std::string empty = (f.dir / "empty.txt").string();
  std::ofstream(empty) << "";
  struct Case {
    std::string extra, prompts, expect;
  };
  const std::vector<Case> cases = {{"--scheduler heun", "", "heun"},
                                   {"--latents " + wrong_shape, "", "wrong_shape.safetensors"},
                                   {"--latents " + wrong_count, "", "wrong_count.safetensors"},
                                   {"", csv, "nocols.csv"},
                                   {"", empty, "empty.txt"}};
  for (const auto& c : cases) {
    const std::string p = c.prompts.empty() ? f.prompts : c.prompts;
    auto r = gb::test::run_goca_bench_in_process("generate --weights " + f.weights + " --prompts " + p + " --out " +
                                                 (f.dir / "bad").string() + " --steps 2 --no-progress " + c.extra);
    EXPECT_EQ(r.code, 2) << c.expect << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << c.expect << ": " << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << r.out;
  }
}

// SD3.5 Medium's structure with real tokenizer files: prompts tokenized by CLIP and T5, the negative prompt "" as
// StableDiffusion3Pipeline encodes it, the pipeline's defaults (FlowMatch Euler, 28 steps) and the kind's dtype.
TEST(GenerateCli, Sd35FromAPromptFile) {
  const auto& f = fx();
  const std::string weights = gb::bb::tiny::write_structural_sd35(f.dir / "sd35", /*large=*/false);
  auto r = gb::test::run_goca_bench_in_process("generate --weights " + weights + " --prompts " + f.prompts + " --out " +
                                               (f.dir / "sd35-out").string() +
                                               " --image-size 64 --limit 2 --batch-size 2 --steps 3 --no-progress");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto a = gb::read_image_rgb((f.dir / "sd35-out" / "000000.png").string());
  const auto b = gb::read_image_rgb((f.dir / "sd35-out" / "000001.png").string());
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{64, 64, 3}));
  EXPECT_FALSE(at::equal(a, b));
  EXPECT_GT(a.to(at::kFloat).std().item<double>(), 1.0);
  nlohmann::json j;
  std::ifstream(f.dir / "sd35-out" / "generate.json") >> j;
  EXPECT_EQ(j["settings"]["backbone"], "sd35-medium");
  EXPECT_EQ(j["settings"]["steps"], 3);
  EXPECT_EQ(gb::gen::default_steps("sd35-medium"), 28);  // StableDiffusion3Pipeline's num_inference_steps
  EXPECT_EQ(j["settings"]["scheduler"], "FlowMatchEulerDiscreteScheduler");
  EXPECT_EQ(j["settings"]["dtype"], "fp32");  // on the CPU; bf16 is the kind's CUDA default
  EXPECT_EQ(j["counts"]["generated"], 2);
}

}  // namespace
