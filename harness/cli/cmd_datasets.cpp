// `goca-bench datasets inspect|verify|make-fixture`: look at a benchmark folder the way the harness reads it.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include "datasets/captions.h"
#include "datasets/dataset.h"
#include "datasets/dataset_config.h"
#include "datasets/fixtures.h"
#include "harness/cli/registry.h"
#include "harness/core/errors.h"
#include "harness/core/log.h"

namespace {

using namespace gb::datasets;

struct SourceFlags {
  std::string config;
  std::vector<std::string> overrides;
  std::string dataset;
  std::string root;
  std::string images;
  std::string protocol;
  std::string labels;
  std::string captions;
  int64_t limit = 0;
};

void add_source_flags(CLI::App* sub, SourceFlags& f) {
  sub->add_option("--config", f.config, "Dataset config (configs/datasets/*.yaml); flags below override it");
  sub->add_option("--set", f.overrides, "Config override key=value (repeatable)");
  sub->add_option("--dataset", f.dataset, "voc | context | coco-object | cityscapes | ade20k | coco-stuff");
  sub->add_option("--root", f.root, "Dataset folder (Context: the pascal-context folder)");
  sub->add_option("--images", f.images, "Image folder (Context: VOC2012/JPEGImages); default: the layout's");
  sub->add_option("--protocol", f.protocol, "paper (default) | standard");
  sub->add_option("--label-source", f.labels,
                  "auto | png | mat | panoptic | labelIds | labelTrainIds | stuffthingmaps");
  sub->add_option("--limit", f.limit, "Read at most N samples (default: the protocol's limit)");
}

DatasetConfig config_from(const SourceFlags& f) {
  DatasetConfig c;
  if (!f.config.empty()) {
    std::vector<std::string> ov = f.overrides;
    if (!f.protocol.empty()) ov.push_back("protocol=" + f.protocol);
    c = load_dataset_config(f.config, ov);
    if (!f.dataset.empty() && parse_dataset_kind(f.dataset) != c.kind)
      gb::fail("--dataset {} contradicts {} (dataset: {})", f.dataset, f.config, c.name());
  } else {
    if (f.dataset.empty())
      gb::fail("give --dataset (voc, context, coco-object, cityscapes, ade20k, coco-stuff) or --config");
    if (!f.overrides.empty()) gb::fail("--set needs --config");
    c = default_dataset_config(parse_dataset_kind(f.dataset),
                               f.protocol.empty() ? Protocol::paper : parse_protocol(f.protocol));
  }
  if (!f.root.empty()) c.root = f.root;
  if (!f.images.empty()) c.images = f.images;
  if (!f.captions.empty()) c.captions = f.captions;
  if (f.limit < 0) gb::fail("--limit must be positive");
  if (f.limit > 0) c.limit = f.limit;
  if (!f.labels.empty()) {
    c.label_source = parse_label_source(f.labels);
    if (!label_source_applies(c.kind, c.label_source))
      gb::fail("label source '{}' does not apply to {}", f.labels, c.name());
  }
  return c;
}

void print_report(const Dataset& ds) {
  const std::string s = ds.report().summary();
  if (!s.empty()) std::cerr << s;
}

void add_inspect(CLI::App* parent) {
  auto* sub = parent->add_subcommand("inspect",
                                     "Print one JSON line per sample in evaluation order: id, size, "
                                     "pixels per class after the mapping");
  auto f = std::make_shared<SourceFlags>();
  add_source_flags(sub, *f);
  auto format = std::make_shared<std::string>("jsonl");
  sub->add_option("--format", *format, "jsonl (one JSON object per sample)")->check(CLI::IsMember({"jsonl"}));
  auto with_gt = std::make_shared<bool>(false);
  sub->add_flag("--gt-classes", *with_gt, "Also print the GT-present classes the captioner would use");
  auto on_error = std::make_shared<std::string>();
  sub->add_option("--on-error", *on_error, "fail | skip (default: the config's, fail)")
      ->check(CLI::IsMember({"fail", "skip"}));
  sub->callback([f, format, with_gt, on_error] {
    DatasetConfig c = config_from(*f);
    if (!on_error->empty()) c.on_error = *on_error == "skip" ? OnError::Skip : OnError::Fail;
    c.missing_caption = MissingCaption::Ignore;  // inspect looks at labels only
    c.captions.clear();
    auto ds = Dataset::open(c);
    const size_t n = ds->size();
    constexpr size_t kChunk = 32;
    for (size_t start = 0; start < n; start += kChunk) {
      const size_t end = std::min(n, start + kChunk);
      std::vector<std::optional<std::string>> lines(end - start);
      std::vector<std::exception_ptr> errors(end - start);
      tbb::parallel_for(start, end, [&](size_t i) {
        try {
          auto s = ds->load(i);
          if (!s) return;
          nlohmann::ordered_json j;
          j["id"] = s->id;
          j["width"] = s->width;
          j["height"] = s->height;
          nlohmann::ordered_json classes = nlohmann::ordered_json::object();
          for (const auto& [v, count] : label_stats(s->label).pixels) classes[std::to_string(v)] = count;
          j["classes"] = classes;
          if (*with_gt) j["gt_classes"] = s->gt_classes;
          lines[i - start] = j.dump();
        } catch (...) {
          errors[i - start] = std::current_exception();
        }
      });
      // In order; the first failure stops the listing after the samples before it.
      for (size_t k = 0; k < lines.size(); ++k) {
        if (errors[k]) {
          std::cout.flush();
          std::rethrow_exception(errors[k]);
        }
        if (lines[k]) std::cout << *lines[k] << "\n";
      }
      std::cout.flush();
    }
    print_report(*ds);
  });
}

void add_verify(CLI::App* parent) {
  auto* sub = parent->add_subcommand(
      "verify",
      "Check a dataset folder against its config and a caption file: counts, missing or unreadable files, "
      "size mismatches, out-of-range labels, images without captions. Exit 2 when problems are found");
  auto f = std::make_shared<SourceFlags>();
  add_source_flags(sub, *f);
  sub->add_option("--captions", f->captions, "Caption JSON (the paper's gpt_output/<ds>.json); default: the config's");
  auto max_lines = std::make_shared<size_t>(10);
  sub->add_option("--max-lines", *max_lines, "Problems printed per kind (default 10)");
  sub->callback([f, max_lines] {
    DatasetConfig c = config_from(*f);
    const bool captions_required = c.missing_caption == MissingCaption::Fail;
    c.on_error = OnError::Skip;
    c.missing_caption = MissingCaption::Skip;
    auto ds = Dataset::open(c);  // layout problems (no root, no split file, no folders) are fatal here
    std::cout << "dataset: " << c.name() << " (protocol " << to_string(c.protocol) << ", labels "
              << to_string(ds->label_source()) << ")\n";
    std::cout << "root: " << c.root << "\nimages: " << resolve_images_dir(c) << "\nlabels: " << resolve_label_dir(c)
              << "\n";
    if (!c.split.empty())
      std::cout << "split: " << resolve_split_file(c) << (c.reverse_split ? " (reversed)" : "") << "\n";
    std::cout << "limit: " << (c.limit > 0 ? std::to_string(c.limit) : std::string("none")) << "\n";
    const size_t listed = ds->size() + ds->report().skipped_count();  // skipped so far = ids without captions
    std::cout << "samples listed: " << listed << "\n";
    if (c.protocol == Protocol::paper) {
      // Sample counts of the paper's evaluation (spec §H; Context: the 964 captioned train ids).
      static const std::map<DatasetKind, int> paper_counts = {
          {DatasetKind::Voc, 1464},       {DatasetKind::Context, 964}, {DatasetKind::CocoObject, 5000},
          {DatasetKind::Cityscapes, 500}, {DatasetKind::Ade20k, 2000}, {DatasetKind::CocoStuff, 5000}};
      std::cout << "the paper evaluates " << paper_counts.at(c.kind) << " samples of this dataset\n";
    }
    if (ds->captions())
      std::cout << "captions: " << ds->captions()->path() << " (" << ds->captions()->size() << " entries)\n";
    else std::cout << "captions: none given (pass --captions to check them)\n";

    std::vector<std::optional<SampleError>> problems(ds->size());
    tbb::parallel_for(size_t{0}, ds->size(), [&](size_t i) {
      try {
        ds->load_or_throw(i);
      } catch (const SampleError& e) {
        problems[i] = e;
      } catch (const gb::UserError& e) {
        problems[i] = SampleError(IssueKind::Other, e.what());
      }
    });
    std::map<IssueKind, std::vector<std::string>> by_kind;
    size_t uncaptioned_ok = 0;  // the config skips ids without a caption on purpose (context.yaml)
    for (const auto& issue : ds->report().skipped()) {
      if (issue.kind == IssueKind::MissingCaption && !captions_required) ++uncaptioned_ok;
      else by_kind[issue.kind].push_back(issue.line());
    }
    if (uncaptioned_ok)
      std::cout << "note: " << uncaptioned_ok
                << " listed ids have no caption and are skipped (missing_caption: skip)\n";
    size_t ok = 0;
    for (const auto& p : problems) {
      if (p) by_kind[p->kind()].push_back(p->what());
      else ++ok;
    }
    std::cout << "samples readable: " << ok << " of " << ds->size() << (ds->captions() ? " with a caption" : "")
              << "\n";
    if (ds->captions()) {
      std::set<std::string> ids;
      for (size_t i = 0; i < ds->size(); ++i) ids.insert(ds->id(i));
      for (const auto& issue : ds->report().skipped()) ids.insert(issue.id);
      size_t extra = 0;
      for (const auto& id : ds->captions()->ids()) extra += ids.count(id) ? 0 : 1;
      if (extra)
        std::cout << "note: " << extra << " caption entries name images outside this split/limit (not a problem)\n";
    }
    for (const auto& [kind, v] : ds->report().notes()) {
      std::cout << "note: " << kind << ": " << v.size() << "\n";
      for (size_t i = 0; i < v.size() && i < *max_lines; ++i) std::cout << "  " << v[i].line() << "\n";
    }
    static const std::map<IssueKind, const char*> fixes = {
        {IssueKind::MissingFile, "restore the files, or check --root/--images and the split file"},
        {IssueKind::Unreadable, "re-extract or re-download the damaged files"},
        {IssueKind::SizeMismatch, "labels must have the image's size; the pairs are mixed up or resized"},
        {IssueKind::OutOfRange,
         "the labels do not follow this protocol's encoding; check --protocol and --label-source"},
        {IssueKind::MissingCaption, "add captions for these images, or use `missing_caption: skip` in the config"},
        {IssueKind::PaperQuirk, "the paper's code fails on these; use --protocol standard or `on_error: skip`"},
        {IssueKind::Other, "see the messages"}};
    size_t total = 0;
    for (const auto& [kind, v] : by_kind) {
      total += v.size();
      std::cout << "PROBLEM " << to_string(kind) << ": " << v.size() << " (fix: " << fixes.at(kind) << ")\n";
      for (size_t i = 0; i < v.size() && i < *max_lines; ++i) std::cout << "  " << v[i] << "\n";
      if (v.size() > *max_lines) std::cout << "  ... and " << v.size() - *max_lines << " more\n";
    }
    if (ds->size() == 0) {
      ++total;
      std::cout << "PROBLEM no usable samples: every listed id was dropped or skipped (fix: check the split file, "
                   "the label folder and the caption file)\n";
    }
    std::cout.flush();
    if (total) gb::fail("verify: {} problem(s) found in {} (see above)", total, c.root);
    std::cout << "OK: no problems found\n";
  });
}

void add_make_fixture(CLI::App* parent) {
  auto* sub = parent->add_subcommand("make-fixture",
                                     "Write a tiny dataset in the real on-disk layout (for tests and "
                                     "demos) and print its paths as JSON");
  auto dataset = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto quirks = std::make_shared<bool>(false);
  sub->add_option("--dataset", *dataset, "voc | context | coco-object | cityscapes | ade20k | coco-stuff")->required();
  sub->add_option("--out", *out, "Folder to write into")->required();
  sub->add_flag("--paper-quirks", *quirks,
                "Include situations only the paper protocol accepts (Q14 reuse, ADE > 150, a COCO-Stuff value that is "
                "no category id)");
  sub->callback([dataset, out, quirks] {
    FixtureOptions o;
    o.paper_quirks = *quirks;
    Fixture fx = write_fixture(parse_dataset_kind(*dataset), *out, o);
    nlohmann::ordered_json j;
    j["dataset"] = *dataset;
    j["root"] = fx.root;
    j["images"] = fx.images;
    j["captions"] = fx.captions;
    j["paper_ids"] = fx.paper_ids;
    j["standard_ids"] = fx.standard_ids;
    std::cout << j.dump(2) << "\n";
  });
}

void add(CLI::App& app) {
  auto* sub = app.add_subcommand("datasets", "Benchmark datasets: inspect, verify, make-fixture");
  sub->require_subcommand(1);
  add_inspect(sub);
  add_verify(sub);
  add_make_fixture(sub);
}

GB_REGISTER_COMMAND(add);

}  // namespace
