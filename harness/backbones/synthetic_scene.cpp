#include "harness/backbones/synthetic_scene.h"

#include "harness/core/errors.h"
#include "harness/io/image_io.h"
#include "harness/backbones/synthetic_field.h"
#include "harness/backbones/synthetic_rng.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

namespace gb::bb {

namespace {

struct ClassLook {
  int64_t id;
  const char* xml_name;  // VOC Annotations name
  std::vector<const char*> words;
  std::array<uint8_t, 3> color;
};

// Caption words are exact members of the captioner's VOC synonym lists and single CLIP tokens.
const std::vector<ClassLook>& class_looks() {
  static const std::vector<ClassLook> looks = {
      {3, "bird", {"bird", "duck", "parrot"}, {230, 200, 40}},
      {5, "bottle", {"bottle"}, {40, 160, 140}},
      {7, "car", {"car", "truck"}, {200, 30, 30}},
      {8, "cat", {"cat", "kitten"}, {230, 130, 40}},
      {12, "dog", {"dog", "puppy"}, {120, 80, 40}},
      {15, "person", {"person", "man", "woman", "boy", "girl"}, {230, 170, 150}},
  };
  return looks;
}

const ClassLook& look(int64_t id) {
  for (const auto& l : class_looks())
    if (l.id == id) return l;
  fail("synthetic world: VOC class {} has no synthetic look (supported: 3, 5, 7, 8, 12, 15)", id);
}

bool inside(const SceneObject& o, double x, double y) {
  const double dx = (x - o.cx) / o.rx, dy = (y - o.cy) / o.ry;
  return o.shape == 0 ? dx * dx + dy * dy <= 1.0 : std::fabs(dx) <= 1.0 && std::fabs(dy) <= 1.0;
}

std::string capitalize(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

}  // namespace

const std::vector<StuffKind>& stuff_kinds() {
  static const std::vector<StuffKind> kinds = {
      {"sky", {120, 170, 235}},  {"wall", {200, 190, 170}}, {"grass", {70, 150, 60}},
      {"road", {100, 100, 100}}, {"floor", {170, 130, 90}}, {"water", {40, 90, 170}},
  };
  return kinds;
}

std::string synthetic_id(int64_t index) { return fmt::format("synth_{:06d}", index); }

Scene make_scene(const std::string& id, const SyntheticWorldOptions& opt) {
  Rng rng(opt.seed, id, "scene");
  Scene s;
  s.id = id;
  const int64_t widths[] = {96, 112, 128}, heights[] = {80, 96, 112};
  s.width = widths[rng.below(3)];
  s.height = heights[rng.below(3)];
  s.horizon = rng.uniform(0.35, 0.65);
  s.stuff_top = kStuffBase + rng.below(2);         // sky or wall
  s.stuff_bottom = kStuffBase + 2 + rng.below(4);  // grass, road, floor, water
  std::vector<int64_t> pool = opt.classes;
  const int64_t n = opt.min_objects + rng.below(opt.max_objects - opt.min_objects + 1);
  for (int64_t k = 0; k < n && !pool.empty(); ++k) {
    const int64_t pick = rng.below(static_cast<int64_t>(pool.size()));
    const int64_t cls = pool[static_cast<size_t>(pick)];
    pool.erase(pool.begin() + pick);
    SceneObject o;
    o.class_id = cls;
    o.shape = static_cast<int>(rng.below(2));
    o.rx = rng.uniform(0.12, 0.28);
    o.ry = rng.uniform(0.12, 0.28);
    o.cx = rng.uniform(0.15 + 0.5 * o.rx, 0.85 - 0.5 * o.rx);
    o.cy = rng.uniform(0.2 + 0.5 * o.ry, 0.85 - 0.5 * o.ry);
    const auto& l = look(cls);
    o.word = l.words[static_cast<size_t>(rng.below(static_cast<int64_t>(l.words.size())))];
    if (cls == 15 && rng.uniform() < 0.5) o.part = "clothes";
    s.objects.push_back(o);
  }
  return s;
}

std::vector<int64_t> Scene::concepts() const {
  std::vector<int64_t> c;
  for (const auto& o : objects) c.push_back(o.class_id);
  c.push_back(stuff_top);
  if (stuff_bottom != stuff_top) c.push_back(stuff_bottom);
  return c;
}

std::string Scene::caption() const {
  std::vector<std::string> parts;
  for (const auto& o : objects) parts.push_back(o.part.empty() ? o.word : "(" + o.word + ", " + o.part + ")");
  parts.push_back(stuff_kinds()[static_cast<size_t>(stuff_bottom - kStuffBase)].word);
  parts.push_back(stuff_kinds()[static_cast<size_t>(stuff_top - kStuffBase)].word);
  std::string c;
  for (size_t i = 0; i < parts.size(); ++i) c += (i ? ", " : "") + parts[i];
  return capitalize(c) + ".";
}

at::Tensor Scene::region_map(int64_t out_h, int64_t out_w) const {
  at::Tensor r = at::empty({out_h, out_w}, at::kLong);
  auto a = r.accessor<int64_t, 2>();
  for (int64_t y = 0; y < out_h; ++y) {
    const double fy = (static_cast<double>(y) + 0.5) / static_cast<double>(out_h);
    for (int64_t x = 0; x < out_w; ++x) {
      const double fx = (static_cast<double>(x) + 0.5) / static_cast<double>(out_w);
      int64_t v = fy < horizon ? stuff_top : stuff_bottom;
      for (const auto& o : objects)
        if (inside(o, fx, fy)) v = o.class_id;
      a[y][x] = v;
    }
  }
  return r;
}

at::Tensor render_label(const Scene& s) {
  at::Tensor region = s.region_map(s.height, s.width);
  // Object index per pixel (0 = stuff) for the boundary: VOC marks object outlines with 255.
  at::Tensor label = region.clone();
  auto reg = region.accessor<int64_t, 2>();
  auto lab = label.accessor<int64_t, 2>();
  auto is_obj = [&](int64_t y, int64_t x) { return reg[y][x] < kStuffBase; };
  for (int64_t y = 0; y < s.height; ++y)
    for (int64_t x = 0; x < s.width; ++x) {
      const int64_t v = reg[y][x];
      lab[y][x] = v < kStuffBase ? v : 0;
      const int64_t dy[] = {-1, 1, 0, 0}, dx[] = {0, 0, -1, 1};
      for (int k = 0; k < 4; ++k) {
        const int64_t yy = y + dy[k], xx = x + dx[k];
        if (yy < 0 || xx < 0 || yy >= s.height || xx >= s.width) continue;
        const int64_t w = reg[yy][xx];
        if (w != v && (is_obj(y, x) || is_obj(yy, xx)) && !(v >= kStuffBase && w >= kStuffBase)) lab[y][x] = 255;
      }
    }
  return label;
}

at::Tensor render_image(const Scene& s, uint64_t seed) {
  at::Tensor region = s.region_map(s.height, s.width);
  auto reg = region.accessor<int64_t, 2>();
  Rng rng(seed, s.id, "texture");
  const std::vector<float> tex = smooth_field(rng, 6, s.height, s.width);
  const std::vector<float> tex2 = smooth_field(rng, 12, s.height, s.width);
  at::Tensor img = at::empty({s.height, s.width, 3}, at::kByte);
  auto im = img.accessor<uint8_t, 3>();
  for (int64_t y = 0; y < s.height; ++y)
    for (int64_t x = 0; x < s.width; ++x) {
      const int64_t v = reg[y][x];
      const auto color = v >= kStuffBase ? stuff_kinds()[static_cast<size_t>(v - kStuffBase)].color : look(v).color;
      const size_t i = static_cast<size_t>(y * s.width + x);
      const double shade = 18.0 * tex[i] + 10.0 * tex2[i] + 6.0 * rng.normal();
      for (int c = 0; c < 3; ++c)
        im[y][x][c] = static_cast<uint8_t>(std::clamp(static_cast<double>(color[c]) + shade, 0.0, 255.0));
    }
  return img;
}

at::Tensor concept_masks(const Scene& s, const std::vector<int64_t>& concepts, int64_t side) {
  constexpr int64_t kSuper = 4;
  at::Tensor region = s.region_map(side * kSuper, side * kSuper);
  auto reg = region.accessor<int64_t, 2>();
  at::Tensor m = at::zeros({static_cast<int64_t>(concepts.size()), side, side}, at::kFloat);
  auto ma = m.accessor<float, 3>();
  const float w = 1.0f / static_cast<float>(kSuper * kSuper);
  for (int64_t y = 0; y < side * kSuper; ++y)
    for (int64_t x = 0; x < side * kSuper; ++x)
      for (size_t c = 0; c < concepts.size(); ++c)
        if (reg[y][x] == concepts[c] || (concepts[c] == kBackgroundConcept && reg[y][x] >= kStuffBase))
          ma[static_cast<int64_t>(c)][y / kSuper][x / kSuper] += w;
  return m;
}

}  // namespace gb::bb
