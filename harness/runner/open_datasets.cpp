#include "harness/runner/open_datasets.h"

#include "harness/backbones/synthetic_scene.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"
#include "harness/io/atomic_file.h"
#include "harness/runner/integration.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

namespace gb::runner {

namespace fs = std::filesystem;
using nlohmann::json;

void ensure_synthetic_dataset(const DatasetEntry& e, const gb::datasets::DatasetConfig& config, uint64_t seed) {
  if (e.synthetic_images <= 0) return;
  gb::bb::SyntheticWorldOptions world;
  world.seed = seed;
  const fs::path marker = fs::path(config.root) / ".goca-bench-synthetic";
  const std::string stamp = fmt::format("images={} seed={}\n", e.synthetic_images, seed);
  fs::create_directories(config.root);
  const std::string lock_path = (fs::path(config.root) / ".goca-bench-synthetic.lock").string();
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) fail_file(lock_path, "cannot create the lock file: {}", std::strerror(errno));
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // closing releases the flock
  } unlock{lock_fd};
  while (::flock(lock_fd, LOCK_EX) != 0)
    if (errno != EINTR) fail_file(lock_path, "cannot lock: {}", std::strerror(errno));
  bool fresh = true;
  if (fs::exists(marker)) {
    std::ifstream in(marker);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fresh = s != stamp;
  }
  if (fresh) {
    log::info("writing the synthetic VOC dataset ({} images) to {}", e.synthetic_images, config.root);
    gb::bb::write_synthetic_voc(config.root, e.synthetic_images, world);
    gb::write_file_atomic(marker.string(), stamp);
  }
}

gb::eval::EvalConfig eval_config(const gb::datasets::DatasetConfig& config, int64_t num_classes,
                                 const std::string& select) {
  gb::eval::EvalConfig ev;
  ev.protocol = config.protocol;
  ev.num_classes = num_classes;
  ev.ignore_index = config.ignore_index < 0 ? 255 : config.ignore_index;
  ev.method = gb::eval::parse_background_method(config.background_method);
  if (!config.background_thresholds.empty()) ev.thresholds = config.background_thresholds;
  ev.rule = gb::eval::ThresholdRule::parse(select);
  return ev;
}

OpenDataset open_dataset(const DatasetEntry& entry, const Experiment& ex) {
  OpenDataset od;
  od.entry = entry;
  od.config = load_dataset_entry(entry);
  ensure_synthetic_dataset(entry, od.config, ex.seed);
  od.dataset = gb::datasets::Dataset::open(od.config);
  od.eval = eval_config(od.config, od.dataset->classes().num_classes(), ex.select);
  return od;
}

gb::reports::DatasetInfo dataset_info(const OpenDataset& od) {
  const auto& ct = od.dataset->classes();
  std::string ids;
  for (size_t i = 0; i < od.dataset->size(); ++i) ids += od.dataset->id(i) + "\n";
  gb::reports::DatasetInfo di;
  di.name = od.entry.name;
  di.kind = gb::datasets::to_string(od.config.kind);
  di.protocol = gb::datasets::to_string(od.config.protocol);
  di.num_classes = ct.num_classes();
  di.class_names = ct.names();
  di.num_images = static_cast<int64_t>(od.dataset->size());
  di.list_hash = gb::reports::stable_hash(ids);
  return di;
}

json canonical_dataset(const gb::datasets::DatasetConfig& c) {
  return {{"kind", gb::datasets::to_string(c.kind)},
          {"protocol", gb::datasets::to_string(c.protocol)},
          {"split", fs::path(c.split).filename().string()},
          {"reverse_split", c.reverse_split},
          {"limit", c.limit},
          {"num_classes", c.num_classes},
          {"ignore_index", c.ignore_index},
          {"void_to_background", c.void_to_background},
          {"gt_from_xml", c.gt_from_xml},
          {"add_background_token", c.add_background_token},
          {"add_missing_class", c.add_missing_class},
          {"background_method", c.background_method},
          {"background_thresholds", c.background_thresholds}};
}

std::vector<OpenDataset> open_datasets(const Experiment& ex, gb::reports::Results& res) {
  std::vector<OpenDataset> datasets;
  std::set<std::string> protocols;
  for (const auto& e : ex.datasets) {
    OpenDataset od = open_dataset(e, ex);
    gb::reports::DatasetInfo di = dataset_info(od);
    protocols.insert(di.protocol);
    res.datasets.push_back(std::move(di));
    datasets.push_back(std::move(od));
  }
  for (const auto& p : protocols) res.protocol += (res.protocol.empty() ? "" : "+") + p;
  return datasets;
}

std::string config_hash(const Experiment& ex, const std::vector<OpenDataset>& datasets) {
  json doc;
  doc["seed"] = ex.seed;
  doc["select"] = ex.select;
  for (const auto& od : datasets)
    doc["datasets"].push_back({{"name", od.entry.name}, {"config", canonical_dataset(od.config)}});
  for (const auto& b : ex.backbones) {
    doc["backbones"].push_back(backbone_hash_entry(b));
    for (const auto& v : ex.variants.at(b.name))
      doc["variants"][b.name].push_back({{"name", v.name}, {"method", yaml_to_json(v.method_yaml)}});
  }
  return gb::reports::stable_hash(doc.dump());
}

}  // namespace gb::runner
